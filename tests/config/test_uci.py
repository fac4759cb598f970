"""Unit tests for the UCI reader (wg_endpointd.config.uci) on literal inputs."""

import os
import pathlib
from types import MappingProxyType

import pytest

from wg_endpointd.config.uci import MAX_BYTES, Package, Section, load, parse
from wg_endpointd.core.errors import ConfigError


def value(text: str, option: str = "v") -> str | tuple[str, ...]:
    """The value of `option` in the only section of `config t` + text."""
    (section,) = parse("config t\n" + text).sections
    return section.options[option]


def error(text: str, path: str = "test.conf") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, path)
    return info.value


# --- tokens and quoting ---------------------------------------------------


def test_unquoted_single_and_double_quoted_values() -> None:
    assert value("option v plain") == "plain"
    assert value("option v 'two words'") == "two words"
    assert value('option v "two words"') == "two words"
    assert value("option v ''x") == "x"


def test_single_quotes_are_fully_literal() -> None:
    assert value(r"option v 'a\nb\'") == r"a\nb" + "\\"
    assert value("""option v '"#;'""") == '"#;'


def test_double_quote_backslash_keeps_next_char_without_c_unescaping() -> None:
    assert value(r'option v "a\"b"') == 'a"b'
    assert value(r'option v "\n\t"') == "nt"
    assert value(r'option v "back\\slash"') == "back\\slash"
    assert value(r'option v "it\'s"') == "it's"
    assert value("""option v "it's" """) == "it's"


def test_unquoted_backslash_keeps_next_char() -> None:
    assert value(r"option v a\ b") == "a b"
    assert value(r"option v \'x\'") == "'x'"
    assert value(r"option v a\#b") == "a#b"
    assert value(r"option v a\;b") == "a;b"


def test_adjacent_pieces_concatenate() -> None:
    assert value("""option v a"b c"'d'""") == "ab cd"
    assert value("option v 'it'\\''s'") == "it's"
    assert value("option v 'a'''\"\"b") == "ab"


def test_quoted_names_and_types() -> None:
    pkg = parse("config 'interface' \"lan\"\n\toption 'proto' 'static'\n")
    (lan,) = pkg.sections
    assert (lan.type, lan.name, lan.options) == ("interface", "lan", {"proto": "static"})


def test_whitespace_tabs_and_indentation() -> None:
    pkg = parse("  config\tt\t'n'  \n\t\toption   a \t b\t\n")
    assert pkg.sections[0].options == {"a": "b"}


# --- comments ---------------------------------------------------------------


def test_comments_full_line_and_trailing() -> None:
    text = (
        "# header\n"
        "   # indented comment\n"
        "config t n # trailing\n"
        "\toption a b# glued to the token\n"
        "\toption c 'd'#glued after a quote\n"
        "#option e f\n"
        "\t# option g h\n"
    )
    (sec,) = parse(text).sections
    assert sec.name == "n"
    assert sec.options == {"a": "b", "c": "d"}


def test_hash_inside_quotes_is_not_a_comment() -> None:
    assert value("option v '#x'") == "#x"
    assert value('option v "a # b"') == "a # b"
    assert value("option v a'#'b") == "a#b"


def test_comment_swallows_a_trailing_backslash() -> None:
    pkg = parse("config t # not a continuation \\\noption a b\n")
    assert pkg.sections[0].options == {"a": "b"}


# --- continuation and multi-line values --------------------------------------


def test_backslash_newline_continues_a_token() -> None:
    assert value("option v ab\\\ncd\n") == "abcd"
    assert value("option v \\\nvalue\n") == "value"


def test_backslash_newline_between_arguments() -> None:
    pkg = parse("config t \\\nname\n\toption a \\\nb\noption c d\n")
    (sec,) = pkg.sections
    assert sec.name == "name"
    assert sec.options == {"a": "b", "c": "d"}
    assert sec.line_of("a") == 3
    assert sec.line_of("c") == 5


def test_backslash_newline_inside_double_quotes_joins_lines() -> None:
    assert value('option v "ab\\\ncd"\n') == "abcd"


def test_backslash_newline_inside_single_quotes_is_kept() -> None:
    assert value("option v 'ab\\\ncd'\n") == "ab\\\ncd"


def test_continuation_followed_by_indentation_ends_the_token() -> None:
    # as in uci: the joined line's leading blank ends the token, so `b` is extra
    exc = error("config t\noption v a\\\n  b\n")
    assert exc.line == 3
    assert "too many arguments" in str(exc)


def test_backslash_at_end_of_file_is_ignored() -> None:
    assert value("option v abc\\") == "abc"
    assert value("option v abc \\") == "abc"


def test_quoted_value_spanning_lines_keeps_newlines() -> None:
    pkg = parse("config t\n\toption v 'line1\nline2\n'\n\toption w \"a\n b\"\nconfig u\n")
    t, u = pkg.sections
    assert t.options == {"v": "line1\nline2\n", "w": "a\n b"}
    assert t.line_of("v") == 2
    assert t.line_of("w") == 5
    assert u.line == 7


def test_crlf_line_endings() -> None:
    text = "config t 'n'\r\n\toption a 'b'\r\n\toption m 'x\r\ny'\r\n\r\nconfig u\r\n"
    t, u = parse(text).sections
    assert t.options == {"a": "b", "m": "x\r\ny"}  # uci keeps the CR inside quotes
    assert u.line == 6


def test_crlf_continuation() -> None:
    assert value("option v ab\\\r\ncd\r\n") == "abcd"


def test_no_trailing_newline_and_empty_input() -> None:
    assert parse("config t n\noption a b").sections[0].options == {"a": "b"}
    assert parse("").sections == ()
    assert parse("\n\n# only comments\n").sections == ()


# --- semicolons and short commands ---------------------------------------------


def test_semicolons_separate_commands() -> None:
    pkg = parse("config t 'n'; option a b ;list c d ; list c e\nconfig u;option f 'g;h'\n")
    n, u = pkg.sections
    assert n.options == {"a": "b", "c": ("d", "e")}
    assert n.line_of("c") == 1
    assert u.line == 2
    assert u.options == {}  # `u;` ended the line: see the next test


def test_semicolon_right_after_an_unquoted_token_ends_the_line() -> None:
    # file.c parse_str: the token's terminator is written over the `;` when no
    # quote or backslash shifted the token, so the rest of the line is lost.
    assert parse("config t n; option a b\n").sections[0].options == {}
    assert parse("config t\noption a b;option c d\n").sections[0].options == {"a": "b"}
    assert parse("config t\noption a b; bogus\n").sections[0].options == {"a": "b"}
    assert parse("config t\noption a; option b c\n").sections[0].options == {}
    # a quote or a backslash in the token keeps the `;` as a separator
    assert value("option a 'b';option v c\n") == "c"
    assert value("option a x\\y;option v c\n") == "c"
    assert value('option a "b"c;option v d\n') == "d"


def test_semicolon_after_quoted_token() -> None:
    pkg = parse("config t 'n';option a 'b';option c \"d\"; option e f\n")
    assert pkg.sections[0].options == {"a": "b", "c": "d", "e": "f"}


def test_trailing_semicolon_and_comment_after_semicolon() -> None:
    pkg = parse("config t n;\noption a b; # comment\n")
    assert pkg.sections[0].options == {"a": "b"}


def test_one_letter_commands() -> None:
    pkg = parse("p network\nc interface lan\no proto static\nl dns 1.1.1.1\nl dns 9.9.9.9\n")
    (lan,) = pkg.sections
    assert lan.options == {"proto": "static", "dns": ("1.1.1.1", "9.9.9.9")}


def test_package_line_is_accepted_and_ignored() -> None:
    pkg = parse("package 'my-network'\n\nconfig t n\npackage other\noption a b\n")
    assert len(pkg.sections) == 1
    assert pkg.sections[0].options == {"a": "b"}
    assert pkg.path == "<string>"


# --- duplicates and lists -----------------------------------------------------


def test_repeated_option_overwrites() -> None:
    (sec,) = parse("config t\noption a 1\noption b 2\noption a 3\n").sections
    assert sec.options == {"b": "2", "a": "3"}
    assert list(sec.options) == ["b", "a"]  # uci re-creates a changed option at the end
    assert sec.line_of("a") == 4


def test_repeating_the_same_value_keeps_position() -> None:
    (sec,) = parse("config t\noption a 1\noption b 2\noption a 1\n").sections
    assert list(sec.options) == ["a", "b"]
    assert sec.line_of("a") == 4


def test_list_collects_items_in_order() -> None:
    (sec,) = parse("config t\nlist a x\noption b y\nlist a z\nlist a x\n").sections
    assert sec.options == {"a": ("x", "z", "x"), "b": "y"}
    assert list(sec.options) == ["a", "b"]
    assert sec.line_of("a") == 5


def test_list_after_option_keeps_old_value_first() -> None:
    (sec,) = parse("config t\noption a old\noption b c\nlist a new\n").sections
    assert sec.options["a"] == ("old", "new")
    assert list(sec.options) == ["b", "a"]


def test_option_after_list_replaces_the_list() -> None:
    (sec,) = parse("config t\nlist a 1\nlist a 2\noption a 3\n").sections
    assert sec.options["a"] == "3"
    assert sec.get_list("a") == ("3",)


def test_empty_option_value_is_ignored() -> None:
    # uci drops `option x ''` while parsing; it neither sets nor clears the option
    (sec,) = parse("config t\noption a ''\noption b 1\noption b \"\"\n").sections
    assert sec.options == {"b": "1"}
    assert sec.line_of("b") == 3
    assert value("option v 'x'\noption v ''''") == "x"


def test_empty_list_item_is_kept() -> None:
    assert value("list v ''\nlist v x") == ("", "x")


# --- sections --------------------------------------------------------------------


def test_named_section_merges_and_keeps_first_position() -> None:
    text = (
        "config iface lan\n"  # 1
        "\toption a 1\n"
        "config iface wan\n"  # 3
        "config iface 'lan'\n"  # 4
        "\toption a 2\n"
        "\toption b 3\n"
    )
    lan, wan = parse(text).sections
    assert (lan.name, lan.index, lan.line) == ("lan", 0, 1)
    assert lan.options == {"a": "2", "b": "3"}
    assert lan.line_of("a") == 5
    assert (wan.name, wan.index) == ("wan", 1)


def test_named_section_with_other_type_is_an_error() -> None:
    exc = error("config iface lan\n\nconfig zone lan\n")
    assert exc.line == 3
    assert exc.path == "test.conf"
    assert str(exc).startswith("test.conf:3: ")
    assert "'iface'" in str(exc) and "'zone'" in str(exc)


def test_anonymous_sections_and_refs() -> None:
    pkg = parse("config a\nconfig b\nconfig a ''\nconfig a named\n")
    a0, b0, a1, named = pkg.sections
    assert a0.anonymous and a1.anonymous and b0.anonymous
    assert not named.anonymous
    assert (a0.ref, b0.ref, a1.ref, named.ref) == ("@a[0]", "@b[0]", "@a[1]", "named")
    assert [s.index for s in pkg.sections] == [0, 0, 1, 2]
    assert a1.name is None


def test_find() -> None:
    pkg = parse("config a x\nconfig b\nconfig a\nconfig b y\n")
    x, b0, a1, y = pkg.sections
    assert pkg.find("x") is x
    assert pkg.find("y") is y
    assert pkg.find("@a[0]") is x
    assert pkg.find("@a[1]") is a1
    assert pkg.find("@a[-1]") is a1
    assert pkg.find("@a[-2]") is x
    assert pkg.find("@b[0]") is b0
    assert pkg.find("@[0]") is x
    assert pkg.find("@[1]") is b0
    assert pkg.find("@[-1]") is y
    for missing in ("z", "@a[2]", "@a[-3]", "@c[0]", "@[4]", "@a", "@a[x]", "@a[0]x", ""):
        assert pkg.find(missing) is None, missing


def test_by_type() -> None:
    pkg = parse("config a\nconfig b\nconfig a n\n")
    assert [s.ref for s in pkg.by_type("a")] == ["@a[0]", "n"]
    assert pkg.by_type("zzz") == []


def test_section_get_and_get_list() -> None:
    (sec,) = parse("config t\noption s 'x y'\nlist l a\nlist l b\n").sections
    assert sec.get("s") == "x y"
    assert sec.get("l") == "a b"  # like config_get
    assert sec.get("missing") is None
    assert sec.get("missing", "dflt") == "dflt"
    assert sec.get_list("s") == ("x y",)
    assert sec.get_list("l") == ("a", "b")
    assert sec.get_list("missing") == ()


def test_line_of_falls_back_to_section_line() -> None:
    pkg = parse("\n\nconfig t n\noption a b\n")
    sec = pkg.sections[0]
    assert sec.line == 3
    assert sec.line_of("a") == 4
    assert sec.line_of("nope") == 3


def test_options_are_read_only() -> None:
    sec = parse("config t\noption a b\n").sections[0]
    with pytest.raises(TypeError):
        sec.options["a"] = "c"  # type: ignore[index]


def test_section_and_package_built_by_hand() -> None:
    sec = Section("t", None, 2, 7, MappingProxyType({"a": ("1", "2")}))
    assert sec.ref == "@t[2]"
    assert sec.get("a") == "1 2"
    assert sec.line_of("a") == 7
    pkg = Package("p", (sec,))
    assert pkg.find("@t[0]") is sec


# --- errors, each with its exact line ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("config t\nfoo bar\n", 2, "invalid command 'foo'"),
        ("config t\n\n  options a b\n", 3, "invalid command 'options'"),
        ("'config' t\n", 1, "invalid command"),
        ("config t\n;\n", 2, "invalid command ';'"),
        ("config t\noption a 'b';\n", 2, "invalid command ''"),  # strtok keeps the LF
        ("config t\noption a 'b' ; \n", 2, "invalid command ''"),
        ("\ufeffconfig t\n", 1, "byte order mark"),
        ("\ufeff# comment\nconfig t\n", 1, "byte order mark"),
        ("config t\noption; option a b\n", 2, "invalid command 'option;'"),
        ("config t 'n'; bogus\n", 1, "invalid command 'bogus'"),
        ("config t\n\\\noption a b\n", 2, "invalid command '\\\\'"),  # no quoting in commands
        ("# c\noption a b\nconfig t\n", 2, "before the first 'config'"),
        ("\nlist a b\n", 2, "before the first 'config'"),
        ("config t\n\nconfig\n", 3, "'config' without arguments"),
        ("config t\n\nconfig", 3, "'config' without arguments"),
        ("config t\n\nconfig \n", 3, "insufficient arguments"),
        ("config # comment\n", 1, "insufficient arguments"),
        ("config t\noption\n", 2, "'option' without arguments"),
        ("config t\noption # x\n", 2, "insufficient arguments"),
        ("package\n", 1, "'package' without arguments"),
        ("package ''\n", 1, "insufficient arguments"),
        ("config t n extra\n", 1, "too many arguments"),
        ("config t\n\toption a b c\n", 2, "too many arguments"),
        ("config t\noption a b \\\nc\n", 3, "too many arguments"),
        ("package a b\n", 1, "too many arguments"),
        ("config t\noption a-b c\n", 2, "invalid option name 'a-b'"),
        ("config t\noption '' c\n", 2, "insufficient arguments"),
        ("config t\noption 'a b' c\n", 2, "invalid option name"),
        ("config t\n\nconfig t a.b\n", 3, "invalid section name 'a.b'"),
        ("config t n-1\n", 1, "invalid section name"),
        ("config ''\n", 1, "insufficient arguments"),
        ("config 'a b'\n", 1, "invalid section type"),
        ("config t\nconfig tÿpe\n", 2, "invalid section type"),
        ("package 'a.b'\n", 1, "invalid package name"),
        ("config t\noption a 'ok'\noption b 'never\nclosed\n", 3, "unterminated ' quote"),
        ('config t\n\noption a "never\nclosed\n', 3, 'unterminated " quote'),
        ('config t\noption a "ends in backslash\\', 2, 'unterminated " quote'),
        ("config t\noption a b'c\n", 2, "unterminated ' quote"),
        ("config t 'n\n", 1, "unterminated ' quote"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int, message: str) -> None:
    exc = error(text)
    assert exc.path == "test.conf"
    assert exc.line == line
    assert str(exc).startswith(f"test.conf:{line}: ")
    assert message in str(exc)


def test_error_lines_count_multiline_values_and_continuations() -> None:
    text = "config t\n\toption a 'x\ny\nz'\n\toption b c\\\nd\n\toption e f g\n"
    assert error(text).line == 7


def test_error_line_with_crlf() -> None:
    assert error("config t\r\n\r\nbogus\r\n").line == 3


def test_control_characters_allowed_in_values() -> None:
    assert value("option v 'a\tb'") == "a\tb"
    assert value("option v 'x\ry'") == "x\ry"  # a lone CR inside quotes is kept
    assert value("option v 'x\x01y'") == "x\x01y"  # file.c never validates values
    assert value("list v \x1b[0m") == ("\x1b[0m",)


def test_option_without_value_does_nothing_and_list_adds_empty_item() -> None:
    (sec,) = parse("config t\noption a 1\noption a\noption b\nlist c\nlist c ''\n").sections
    assert sec.options == {"a": "1", "c": ("", "")}
    assert value("option x y\nlist v # comment\n") == ("",)


def test_empty_extra_argument_is_not_too_many() -> None:
    assert value("option v b ''\n") == "b"


def test_nul_byte_drops_the_rest_of_its_line_like_fgets() -> None:
    assert value("option v 'x\x00junk\ny'\n") == "xy"  # strlen stops, fgets reads on
    assert value("\x00whole line\noption v y\n") == "y"


# --- a realistic /etc/config/network ----------------------------------------------

NETWORK = """\
config interface 'loopback'
	option device 'lo'
	option proto 'static'
	option ipaddr '127.0.0.1'
	option netmask '255.0.0.0'

config globals 'globals'
	option ula_prefix 'fd12:3456:789a::/48'

config device
	option name 'br-lan'
	option type 'bridge'
	list ports 'lan1'
	list ports 'lan2'

config interface 'lan'
	option device 'br-lan'
	option proto 'static'
	option ipaddr '192.168.1.1'
	option netmask '255.255.255.0'
	option ip6assign '60'

config interface 'wg0'
	option proto 'wireguard'
	option private_key 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
	option listen_port '51820'
	list addresses '10.0.0.1/24'
	list addresses 'fd00::1/64'

config wireguard_wg0
	option description 'laptop'
	option public_key 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
	option endpoint_host 'laptop.example.org'
	option endpoint_port '51820'
	option persistent_keepalive '25'
	list allowed_ips '10.0.0.2/32'
	list allowed_ips 'fd00::2/128'

config wireguard_wg0
	option description "office # VPN"
	option public_key 'TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0='
	option endpoint_host 'vpn.example.com'
	option route_allowed_ips '1'
	list allowed_ips '0.0.0.0/0'
"""


def test_realistic_network_config() -> None:
    pkg = parse(NETWORK, "/etc/config/network")
    assert [s.ref for s in pkg.sections] == [
        "loopback", "globals", "@device[0]", "lan", "wg0", "@wireguard_wg0[0]",
        "@wireguard_wg0[1]",
    ]  # fmt: skip
    wg0 = pkg.find("wg0")
    assert wg0 is not None
    assert wg0.type == "interface"
    assert wg0.get("proto") == "wireguard"
    assert wg0.get_list("addresses") == ("10.0.0.1/24", "fd00::1/64")
    assert wg0.line == 23
    assert wg0.line_of("listen_port") == 26

    peers = pkg.by_type("wireguard_wg0")
    assert len(peers) == 2
    laptop, office = peers
    assert pkg.find("@wireguard_wg0[0]") is laptop
    assert pkg.find("@wireguard_wg0[-1]") is office
    assert pkg.find("@[6]") is office
    assert pkg.find("@[1]") is pkg.find("globals")
    assert laptop.get("endpoint_host") == "laptop.example.org"
    assert laptop.get("endpoint_port") == "51820"
    assert laptop.get_list("allowed_ips") == ("10.0.0.2/32", "fd00::2/128")
    assert laptop.line == 30
    assert laptop.line_of("endpoint_host") == 33
    assert office.get("description") == "office # VPN"
    assert office.get("endpoint_port") is None
    assert office.get_list("allowed_ips") == ("0.0.0.0/0",)
    assert office.ref == "@wireguard_wg0[1]"
    assert office.line == 39

    device = pkg.by_type("device")[0]
    assert device.get("ports") == "lan1 lan2"


# --- load() -------------------------------------------------------------------------


def test_load_missing_file(fs: object) -> None:
    with pytest.raises(ConfigError) as info:
        load("/etc/config/network")
    assert str(info.value) == "/etc/config/network: cannot read: No such file or directory"
    assert info.value.path == "/etc/config/network"
    assert info.value.line is None


def test_load_real_file(fs: object) -> None:
    os.makedirs("/etc/config")
    with open("/etc/config/network", "w", encoding="utf-8", newline="") as f:  # pyfakefs
        f.write(NETWORK.replace("\n", "\r\n"))
    pkg = load("/etc/config/network")
    assert pkg.path == "/etc/config/network"
    assert pkg.find("@wireguard_wg0[-1]") is not None
    assert len(pkg.by_type("wireguard_wg0")) == 2


def test_load_reports_parse_errors_with_path(fs: object) -> None:
    with open("/tmp/bad", "w", encoding="utf-8") as f:
        f.write("config t\n\toption a 'b\n")
    with pytest.raises(ConfigError, match=r"^/tmp/bad:2: unterminated ' quote$"):
        load("/tmp/bad")


def test_load_keeps_bytes_that_are_not_utf8(fs: object) -> None:
    raw = b"config t\noption a 'B\xfcro \xe2\x82\xac \xff'\n"
    with open("/tmp/latin1", "wb") as f:
        f.write(raw)
    (sec,) = load("/tmp/latin1").sections
    text = sec.get("a")
    assert text is not None
    assert text.encode("utf-8", "surrogateescape") == b"B\xfcro \xe2\x82\xac \xff"
    assert "\u20ac" in text  # valid UTF-8 in the same value still decodes


def test_load_directory_is_an_error(fs: object) -> None:
    os.makedirs("/etc/config")
    with pytest.raises(ConfigError, match="^/etc/config: cannot read: "):
        load("/etc/config")


def test_load_refuses_a_file_over_the_limit(fs: object) -> None:
    with open("/tmp/big", "w", encoding="utf-8") as f:
        f.write("\n" * (MAX_BYTES + 1))
    with pytest.raises(ConfigError, match=rf"^/tmp/big: refused: {MAX_BYTES + 1} bytes"):
        load("/tmp/big")
    with open("/tmp/big", "w", encoding="utf-8") as f:
        f.write("\n" * MAX_BYTES)
    assert load("/tmp/big").sections == ()


def test_load_dangling_symlink_names_it(fs: object) -> None:
    os.symlink("/nowhere", "/tmp/link")
    with pytest.raises(ConfigError, match="^/tmp/link: cannot read: dangling symbolic link$"):
        load("/tmp/link")


def test_load_never_blocks_on_a_fifo(tmp_path: pathlib.Path) -> None:
    fifo = tmp_path / "wg-endpointd"
    os.mkfifo(fifo)  # no writer: a blocking open would hang forever
    with pytest.raises(ConfigError, match="cannot read: not a regular file$"):
        load(str(fifo))
