#!/usr/bin/env python3
"""Writes the seed corpus (fuzz/seeds/<target>/) from the repository's own inputs:
proxy.toml, the cookies and blobs in the unit tests (made by Rails, Django, Flask, Laravel,
PHP and Ruby themselves), CSP headers from the tests, and a trimmed bench page. Run from
fuzz/: python3 seeds/make_seeds.py. The layout of each target's input is described at the
top of its fuzz_targets/<target>.rs.

The fuzz-* files next to these are not written here: they are minimised corpus entries
picked from the 10-minute runs (fuzz/RESULTS.md, "Seeds"), kept as they are."""
import gzip, hashlib, os, re, struct, sys, zlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")


def src(path):
    return open(os.path.join(ROOT, path), encoding="utf-8").read()


def const(path, name):
    m = re.search(r'const %s: &str =\s*"((?:[^"\\]|\\.)*)";' % name, src(path))
    if not m:
        sys.exit("no %s in %s" % (name, path))
    return m.group(1)


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# config: the documented example, and one small config per resolver.
write("config", "proxy.toml", src("proxy.toml"))
BASE = '[upstream]\nurl = "http://127.0.0.1:3000"\n[intercom]\napp_id = "abc123de"\nsecret_env = "MSG"\n'
for name, section in {
    "rails": '[session]\ncookie = "_app_session"\nresolver = "rails"\n[session.fields]\nuser_id = "/warden.user.user.key/0/0"\n[session.rails]\nsecret_key_base_env = "SECRET_KEY_BASE"\ncipher = "aes-256-gcm"\ndigest = "auto"\n',
    "django": '[session]\nresolver = "django"\n[session.fields]\nuser_id = "/_auth_user_id"\n[session.django]\nbackend = "signed_cookies"\nsecret_key_env = "DJANGO_SECRET_KEY"\nfallback_keys_env = "DJANGO_SECRET_KEY_FALLBACKS"\n',
    "flask": '[session]\nresolver = "flask"\n[session.fields]\nuser_id = "/_user_id"\n[session.flask]\nsecret_key_env = "FLASK_SECRET_KEY"\n',
    "laravel": '[session]\nresolver = "laravel"\n[session.fields]\nuser_id = "/login_web_59ba36addc2b2f9401580f014c7f58ea4e30989d"\n[session.laravel]\napp_key_env = "APP_KEY"\nprevious_keys_env = "APP_PREVIOUS_KEYS"\ndriver = "file"\npath = "/srv/app/storage/framework/sessions"\nlifetime = "2h"\n',
    "php": '[session]\nresolver = "php"\n[session.fields]\nuser_id = "/user_id"\n[session.php]\npath = "2;/var/lib/php/sessions"\nserialize_handler = "php_serialize"\n',
    "header": '[server]\ntrusted_proxies = ["10.0.0.0/8"]\n[session]\nresolver = "header"\n[session.fields]\nuser_id = "/x-user-id"\n[session.header]\nuser_id = "X-User-Id"\n',
    "jwt": '[session]\ncookie = "session"\nresolver = "jwt"\ncache_ttl = "30s"\n[session.fields]\nuser_id = "/sub"\nemail = "/email"\n[session.jwt]\nalgorithms = ["HS256"]\nkey_env = "APP_SESSION_SECRET"\nleeway = "5s"\n[[routes]]\npath = "/admin/**"\ninject = false\n[logout]\npaths = ["/logout"]\n',
}.items():
    write("config", name + ".toml", BASE + section)

# cookie_header: "<name>\n<field>\0<field>...[\x01<new value>]".
for i, (name, fields) in enumerate([
    ("session", ["a=1; session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.sig; b=2"]),
    ("session", ["a=1", "session=abc", "theme=dark"]),
    ("laravel_session", ["XSRF-TOKEN=eyJpdiI6Ij; laravel_session=eyJpdiI6IkRj%3D%3D"]),
    ("connect.sid", ["connect.sid=s%3Aabc.def; x=\"quoted; y\""]),
    ("PHPSESSID", ["PHPSESSID=abc,def-1; PHPSESSID=other"]),
    ("sessionid", ["csrftoken=x; sessionid=abcdefghijklmnopqrstuvwxyz012345", "sessionid=abc"]),
    ("_app_session", ["$Version=1; _app_session=QeepDOWid5%2F6Ft--abc--def; Path=/"]),
]):
    write("cookie_header", "c%d" % i, name + "\n" + "\0".join(fields) + ("\x01fresh-value" if i % 2 else ""))

# session_formats: case byte, flags byte, data (see the target).
RAILS = "src/identity/rails/cookie/tests.rs"
for c in ["GCM_SHA1_JSON", "GCM_SHA256_JSON", "GCM_SHA1_MARSHAL", "CBC_SHA1_JSON_NO_METADATA", "CBC_SHA1_MARSHAL", "CBC_SHA256_JSON"]:
    write("session_formats", "raw-rails-" + c.lower(), b"\x01\x00" + const(RAILS, c).encode())
DJANGO = "src/identity/django/signing/tests.rs"
for c in ["COOKIE", "COOKIE_PLAIN", "COOKIE_OLD_KEY", "NOT_JSON"]:
    write("session_formats", "raw-django-" + c.lower(), b"\x02\x00" + const(DJANGO, c).encode())
FLASK = "src/identity/flask/signing/tests.rs"
for c in ["LOGIN", "PLAIN", "TAGGED", "FALLBACK"]:
    write("session_formats", "raw-flask-" + c.lower(), b"\x03\x00" + const(FLASK, c).encode())
LARAVEL = "src/identity/laravel/encrypter/tests.rs"
for c in ["COOKIE_CBC256_A", "COOKIE_CBC256_B", "COOKIE_CBC256_A_XSRF"]:
    write("session_formats", "raw-laravel-" + c.lower(), b"\x04\x00" + const(LARAVEL, c).encode())
write("session_formats", "raw-express", b"\x05\x00s%3AwJ5k8bV3.abcdEFGH%2Bijkl%2Fmnop")
write("session_formats", "raw-jwt", b"\x00\x00eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1LTciLCJleHAiOjQxMDI0NDQ4MDB9.x")
write("session_formats", "signed-jwt", b'\x06\x00{"sub":"u-7","email":"a@example.com","name":"A","exp":4102444800,"nbf":1}')
write("session_formats", "signed-django", b'\x07\x01{"_auth_user_id":"42","_auth_user_backend":"django.contrib.auth.backends.ModelBackend","_auth_user_hash":"5f1d"}')
write("session_formats", "signed-flask", b'\x08\x00{"_fresh":true,"_user_id":"42","t":{" t":[1,{" b":"AAE="}]},"u":{" u":"12345678123456781234567812345678"},"d":{" d":"Mon, 01 Jan 2024 00:00:00 GMT"}}')
write("session_formats", "signed-rails-gcm", b'\x09\x06{"session_id":"abc","warden.user.user.key":[[1],"$2a$12$x"]}\n2100-01-01T00:00:00.000Z')
write("session_formats", "signed-rails-cbc", b'\x0a\x00{"session_id":"54670c0f51bfa4238205c33c0c32aad8"}')
write("session_formats", "signed-laravel", b"\x0b\x00Xk3vQ9tT2pLmN8rS5wYbZcD4eF6gH7jK1aB0uVwx")
write("session_formats", "signed-express", b"\x0c\x00wJ5k8bV3pQ-xYz_sid.with.dots")
# Marshal of {"session_id"=>"abc", "warden.user.user.key"=>[[1], "x"]} (without the 04 08).
write("session_formats", "signed-rails-marshal", b'\x0d\x00{\x07I"\x0fsession_id\x06:\x06ETI"\x08abc\x06;\x00TI"\x19warden.user.user.key\x06;\x00T[\x07[\x06i\x06I"\x06x\x06;\x00T')

# php_ruby_data: reader byte, data.
PHP = src("src/identity/php/serialize/tests.rs")
PHP_RAW = re.findall(r'const [A-Z_]+: &\[u8\] =\s*br#"(.*?)"#;', PHP, re.S)
PHP_ESC = re.findall(r'const [A-Z_]+: &\[u8\] =\s*b"((?:[^"\\]|\\.)*)";', PHP, re.S)
for i, data in enumerate([r.encode() for r in PHP_RAW] + [e.encode().decode("unicode_escape").encode("latin-1") for e in PHP_ESC]):
    write("php_ruby_data", "php-%d" % i, b"\x00" + data)
write("php_ruby_data", "php-session", b'\x01login_web_59ba|i:7;_token|s:5:"abcde";flash|a:2:{s:3:"old";a:0:{}s:3:"new";a:0:{}}')
write("php_ruby_data", "php-serialize-session", b'\x02a:2:{s:7:"user_id";i:42;s:5:"roles";a:1:{i:0;s:5:"admin";}}')
MARSHAL = src("src/identity/rails/marshal/tests.rs")
blobs = re.findall(r'\(\s*"[^"]*",\s*b"((?:[^"\\]|\\.)*)"', MARSHAL)
for i, blob in enumerate(blobs[::3][:40]):
    write("php_ruby_data", "marshal-%d" % i, b"\x03" + blob.encode().decode("unicode_escape").encode("latin-1"))

# csp: header values.
for i, v in enumerate([
    "script-src 'nonce-abc123' 'strict-dynamic'; object-src 'none'; base-uri 'self'",
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'",
    "default-src 'none'; connect-src 'self', script-src 'sha256-abc=' https://cdn.example.com",
    "child-src 'none'; form-action 'self'; script-src-elem 'self'; report-uri /csp",
    "DEFAULT-SRC 'SELF' 'NONCE-Q1' ; Script-Src 'Unsafe-Inline' 'sha384-x'",
]):
    write("csp", "csp-%d" % i, v)

# headers: flags, 16-byte peer (IPv4-mapped 203.0.113.9 or ::1), "name: value" lines.
v4 = bytes(10) + b"\xff\xff" + bytes([203, 0, 113, 9])
v6 = bytes(15) + b"\x01"
write("headers", "request", b"\x00" + v4 + b"host: app.example.com\nconnection: keep-alive, x-secret, te\nte: trailers, gzip\nx-secret: 1\ncookie: a=1\ncookie: b=2\nx-forwarded-for: 1.2.3.4\nx-real-ip: 1.2.3.4\nforwarded: for=1.2.3.4\ntrailer: x-t\nproxy-authorization: basic x")
write("headers", "trusted", b"\x03" + v6 + b"host: app.example.com\nx-forwarded-for: 198.51.100.1, 10.0.0.2\nx-forwarded-host: shop.example.com\nx-forwarded-proto: https\ncf-connecting-ip: 198.51.100.1")
write("headers", "websocket", b"\x04" + v4 + b"host: a\nconnection: Upgrade\nupgrade: websocket\nsec-websocket-key: x\ntransfer-encoding: chunked\nkeep-alive: timeout=5")

# rewrite: coding, flags, cut count, cuts (u16 LE), page.
page = open(os.path.join(ROOT, "bench/pages/page-34k.html"), "rb").read()
head_end = page.index(b"</head>")
head = page[: head_end + 7]
trimmed = head[:1200] + head[-400:] + page[head_end + 7 : head_end + 1200] + b"</body></html>"
cuts = struct.pack("<HHH", 5, len(head[:1200]) + 390, 1500)
write("rewrite", "page-identity", b"\x00\x00\x03" + cuts + trimmed)
write("rewrite", "page-gzip", b"\x01\x00\x03" + cuts + trimmed)
write("rewrite", "page-br", b"\x02\x00\x01" + struct.pack("<H", 100) + trimmed)
write("rewrite", "page-memo", b"\x00\x08\x00" + head + b"<body>x</body>")
write("rewrite", "raw-gzip", b"\x01\x04\x01" + struct.pack("<H", 20) + gzip.compress(trimmed[:600]))
write("rewrite", "raw-deflate", b"\x03\x04\x00" + zlib.compress(trimmed[:600]))
write("rewrite", "meta-csp", b"\x00\x00\x00<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"script-src &#39;self&#39;\"></head><body>x</body></html>")
write("rewrite", "open-attribute", b"\x00\x01\x01\x10\x00<!DOCTYPE html><title>t</title><p>hello<img src='http://x/?x=")
write("rewrite", "cp1252", b"\x00\x02\x00<html><head><title>caf\xe9</title><script>var s='</head>';</script><!-- </head> --></HEAD  ><body>")
write("rewrite", "messenger", b"\x00\x00\x00<html><head><script>window.intercomSettings={app_id:'x'}</script></head><body></body></html>")
