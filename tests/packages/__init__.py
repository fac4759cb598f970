"""The .ipk, .apk and feed packages, their scripts and the installed tree."""
