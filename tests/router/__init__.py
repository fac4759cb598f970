"""The router's shell scripts (busybox sh, with stubs after upstream) and the LuCI app."""
