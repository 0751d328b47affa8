#!/usr/bin/env python3
"""build-corpus.py: a real multi-domain text corpus from Debian packages, as llm.c token shards.

Each domain (C code, Python code, kernel docs, man pages, a dictionary, an encyclopedia, quotes,
legal texts, scripture) is built from the Debian 12 packages named in docs/corpus.md: the
.deb files are fetched with `apt-get download` into a cache (a second run downloads nothing),
read with `dpkg-deb --fsys-tarfile` (nothing is installed, except groff-base when `groff` is
missing), and cut into documents (one file, one man page, one dictionary entry, one quote...).

Whole documents are split into train and validation by a hash of their name, then written as
byte-level tokens (vocab 256: each byte of UTF-8 text is one uint16 token) in llm.c's `.bin`
format: a header of 256 little-endian int32 (magic 20240520, version 1, token count, the rest 0)
followed by the uint16 tokens. Every document is preceded by the separator token 0 (the byte NUL,
which is removed from the text), like the <|endoftext|> token llm.c puts before each document.

Output:  OUT/<domain>/train_000.bin ..., OUT/<domain>/val_000.bin ..., OUT/manifest.json (per
domain: tokens, documents, packages, licence, shard files), OUT/spec-domains.yaml (a `domains:`
list to paste into a sweep spec).

Only the Python standard library is used. The script is idempotent: a domain whose manifest entry
and shards exist with the same settings is skipped unless --force is given.
"""

import argparse
import array
import datetime
import fcntl
import glob
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import time
import zlib

VERSION = "1.0.0"
BUILDER_VERSION = 1  # bump when the document extraction changes, so old shards are rebuilt
MAGIC = 20240520
SHARD_VERSION = 1
HEADER_INTS = 256
SEPARATOR = 0
MB = 1000 * 1000

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class CorpusError(Exception):
    """An error the user can act on: printed without a traceback, exit status 1."""


# ---------------------------------------------------------------------------------------------
# Shards: llm.c .bin format


def shard_header(ntokens):
    """The 1024-byte llm.c header for a shard of ntokens uint16 tokens."""
    header = [0] * HEADER_INTS
    header[0] = MAGIC
    header[1] = SHARD_VERSION
    header[2] = ntokens
    return struct.pack("<%di" % HEADER_INTS, *header)


def tokens_of(data):
    """The byte-level tokens of a bytes object as little-endian uint16 (bytes of twice the
    length): each byte b becomes the token b, i.e. the two bytes b, 0."""
    out = bytearray(2 * len(data))
    out[0::2] = data
    return out


def write_shard(path, token_chunks):
    """Write the token chunks (little-endian uint16 bytes, see tokens_of) as one llm.c shard at
    path; return its token count. The file appears atomically: written beside path, renamed."""
    ntokens = sum(len(a) for a in token_chunks) // 2
    if ntokens >= 2**31:
        raise CorpusError("shard %s would hold %d tokens, over the int32 header" % (path, ntokens))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(shard_header(ntokens))
        for a in token_chunks:
            f.write(a)
    os.replace(tmp, path)
    return ntokens


def read_shard(path):
    """Read an llm.c shard; return its tokens as array('H'). Raises CorpusError if malformed."""
    with open(path, "rb") as f:
        head = f.read(HEADER_INTS * 4)
        if len(head) != HEADER_INTS * 4:
            raise CorpusError("%s: short header" % path)
        magic, version, ntokens = struct.unpack("<3i", head[:12])
        if magic != MAGIC:
            raise CorpusError("%s: bad magic %d (want %d)" % (path, magic, MAGIC))
        if version != SHARD_VERSION:
            raise CorpusError("%s: unsupported version %d" % (path, version))
        toks = array.array("H")
        body = f.read()
    if len(body) != 2 * ntokens:
        raise CorpusError("%s: header says %d tokens, file holds %d bytes of tokens"
                          % (path, ntokens, len(body)))
    toks.frombytes(body)
    if sys.byteorder != "little":
        toks.byteswap()
    return toks


def split_documents(tokens):
    """Split a shard's tokens back into documents (bytes), on the separator token."""
    docs = []
    cur = None
    for t in tokens:
        if t == SEPARATOR:
            if cur is not None:
                docs.append(bytes(cur))
            cur = bytearray()
        else:
            if cur is None:  # tokens before the first separator: still a document
                cur = bytearray()
            cur.append(t)
    if cur is not None:
        docs.append(bytes(cur))
    return docs


# ---------------------------------------------------------------------------------------------
# Documents: selection under a cap, and the train/validation split


def name_hash(salt, name):
    """A stable 64-bit hash of a document name, in [0, 2**64)."""
    h = hashlib.sha1(salt.encode() + b"\0" + name.encode("utf-8", "surrogateescape"))
    return int.from_bytes(h.digest()[:8], "big")


def is_validation(name, fraction):
    """True if the document goes to validation: its hash falls in the first `fraction`."""
    return name_hash("valid", name) < fraction * 2.0**64


def clean_text(data):
    """Document bytes as they go into a shard: NUL (the separator) removed, ends trimmed."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    return data.replace(b"\0", b"").strip()


def select_and_split(docs, max_bytes, valid_fraction):
    """Choose documents under a byte cap and split them into train and validation.

    docs: dict name -> bytes. Documents are ordered by a hash of their name (a deterministic
    shuffle), taken in that order until max_bytes of text are reached (0 or None: no cap), and
    each goes to validation when is_validation() says so. At least one document goes to each
    side when there are two or more. Returns (train, valid): lists of (name, bytes) in
    hash order.
    """
    order = sorted(docs, key=lambda n: (name_hash("pick", n), n))
    chosen = []
    total = 0
    for name in order:
        if max_bytes and total >= max_bytes:
            break
        chosen.append(name)
        total += len(docs[name])
    train = [n for n in chosen if not is_validation(n, valid_fraction)]
    valid = [n for n in chosen if is_validation(n, valid_fraction)]
    if len(chosen) >= 2 and valid_fraction > 0:
        if not valid:  # the smallest validation hash among the chosen goes to validation
            n = min(train, key=lambda x: (name_hash("valid", x), x))
            train.remove(n)
            valid.append(n)
        elif not train:
            n = max(valid, key=lambda x: (name_hash("valid", x), x))
            valid.remove(n)
            train.append(n)
    return [(n, docs[n]) for n in train], [(n, docs[n]) for n in valid]


def write_split(dirpath, prefix, items, shard_tokens):
    """Write documents as shards prefix_000.bin ... in dirpath; each document starts with the
    separator and never spans two shards. Returns a list of (filename, tokens, documents)."""
    shards = []
    cur, cur_tokens, cur_docs = [], 0, 0
    sep = struct.pack("<H", SEPARATOR)

    def flush():
        fname = "%s_%03d.bin" % (prefix, len(shards))
        n = write_shard(os.path.join(dirpath, fname), cur)
        shards.append((fname, n, cur_docs))

    for _name, data in items:
        cur.append(sep)
        cur.append(tokens_of(data))
        cur_tokens += 1 + len(data)
        cur_docs += 1
        if cur_tokens >= shard_tokens:
            flush()
            cur, cur_tokens, cur_docs = [], 0, 0
    if cur or not shards:
        flush()
    return shards


# ---------------------------------------------------------------------------------------------
# Debian packages: fetch into the cache, read members without installing


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def cached_deb(cache, pkg):
    """The cached .deb of pkg (the last downloaded if there are several versions), or None."""
    found = glob.glob(os.path.join(cache, glob.escape(pkg) + "_*.deb"))
    return max(found, key=lambda p: (os.path.getmtime(p), p)) if found else None


def apt_download(names, cache):
    """Run `apt-get download names...` in a fresh folder of the cache and move the finished
    .deb files into the cache, so an interrupted download never leaves a partial .deb there."""
    tmp = os.path.join(cache, ".partial-%d" % os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        r = run(["apt-get", "download"] + names, cwd=tmp)
        if r.returncode == 0:
            for fn in os.listdir(tmp):
                if fn.endswith(".deb"):
                    os.replace(os.path.join(tmp, fn), os.path.join(cache, fn))
        return r
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch_packages(pkgs, cache, log):
    """Make sure every package's .deb is in the cache; return {pkg: path}.

    Missing ones are fetched with one `apt-get download` (in the cache directory); if that fails,
    `apt-get update` runs once and the download is retried. Raises CorpusError naming the
    packages that still cannot be fetched.
    """
    os.makedirs(cache, exist_ok=True)
    missing = [p for p in pkgs if not cached_deb(cache, p)]
    if missing:
        if not shutil.which("apt-get"):
            raise CorpusError("apt-get not found: cannot fetch %s" % " ".join(missing))
        t0 = time.time()
        log("fetching %d package(s): %s" % (len(missing), " ".join(missing)))
        r = apt_download(missing, cache)
        if r.returncode != 0:
            log("apt-get download failed; running apt-get update once and retrying")
            u = run(["apt-get", "update"])
            if u.returncode != 0:
                log("apt-get update failed: %s" % u.stderr.decode(errors="replace").strip())
            # apt-get download fetches nothing when one name is unknown: retry one by one so
            # the others arrive and the error names exactly the packages that are missing.
            failed = []
            for p in missing:
                if cached_deb(cache, p):
                    continue
                r = apt_download([p], cache)
                if r.returncode != 0:
                    err = r.stderr.decode(errors="replace").strip().splitlines()
                    failed.append("%s: %s" % (p, ([x for x in err if x.startswith("E:")]
                                                  or err or ["apt-get download failed"])[-1]))
            if failed:
                raise CorpusError("cannot fetch %d package(s) with apt-get download (the names "
                                  "are Debian 12's; see docs/corpus.md):\n  %s"
                                  % (len(failed), "\n  ".join(failed)))
        log("fetched in %.1f s" % (time.time() - t0))
    out = {}
    for p in pkgs:
        path = cached_deb(cache, p)
        if not path:
            raise CorpusError("package %s: apt-get download reported success but left no .deb "
                              "in %s" % (p, cache))
        out[p] = path
    return out


def deb_members(deb, want):
    """Yield (path, bytes) for the regular files of a .deb whose path (without './') and size
    satisfy want(path, size). Reads the data tarball through `dpkg-deb --fsys-tarfile`."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
            for m in tf:
                if not m.isfile():
                    continue
                name = m.name[2:] if m.name.startswith("./") else m.name
                if want(name, m.size):
                    yield name, tf.extractfile(m).read()
        proc.stdout.read()  # drain the padding so dpkg-deb exits cleanly
    finally:
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        rc = proc.wait()
    if rc != 0:
        raise CorpusError("dpkg-deb --fsys-tarfile %s failed (delete the file to fetch it "
                          "again): %s" % (deb, err.decode(errors="replace").strip()))


def decode_utf8(data):
    """Text of data if it is valid UTF-8, else None."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# ---------------------------------------------------------------------------------------------
# Domain builders. Each takes {pkg: deb path} and a log function, returns {name: bytes}.


def build_code_c(debs, log):
    xz = None
    for _name, data in deb_members(debs["glibc-source"],
                                   lambda n, s: re.fullmatch(r"usr/src/glibc/glibc-[\d.]+\.tar\.xz",
                                                             n) is not None):
        xz = data
    if xz is None:
        raise CorpusError("glibc-source: no usr/src/glibc/glibc-*.tar.xz in the package")
    docs = {}
    with tarfile.open(fileobj=io.BytesIO(xz), mode="r|xz") as tf:
        for m in tf:
            if not m.isfile() or m.size >= 100_000 or not m.name.endswith((".c", ".h")):
                continue
            text = decode_utf8(tf.extractfile(m).read())
            if text is not None:
                docs[m.name] = clean_text(text)
    return docs


PY_PACKAGES = ["libpython3.11-minimal", "libpython3.11-stdlib", "libpython3.11-testsuite"]


def build_code_python(debs, log):
    docs = {}
    prefix = "usr/lib/python3.11/"
    for pkg in PY_PACKAGES:
        for name, data in deb_members(
                debs[pkg], lambda n, s: n.startswith(prefix) and n.endswith(".py") and s < 300_000
                and not n.endswith("pydoc_data/topics.py")):
            text = decode_utf8(data)
            if text is not None:
                docs[name[len(prefix):]] = clean_text(text)
    return docs


def build_tech_docs(debs, log):
    docs = {}
    prefix = "usr/share/doc/linux-doc-6.1/Documentation/"
    for name, data in deb_members(
            debs["linux-doc-6.1"], lambda n, s: n.startswith(prefix) and n.endswith(".rst.gz")
            and not n.startswith(prefix + "translations/")):
        text = decode_utf8(gzip.decompress(data))
        if text is not None:
            docs[name[len(prefix):-3]] = clean_text(text)
    return docs


MAN_MARK = "@@REGMIX-CORPUS-PAGE-END-7f3a@@"
GROFF = ["groff", "-Kutf-8", "-t", "-man", "-Tutf8", "-P-cbou", "-rLL=78n", "-rHY=0"]
# The first .TH loads the man macros; then page headers and footers (PT, BT) are emptied.
GROFF_PRELUDE = ".TH REGMIX 7\n.de PT\n..\n.de BT\n..\n.br\n%s\n" % MAN_MARK


def ensure_groff(log):
    if shutil.which("groff"):
        return
    log("groff is missing: installing groff-base with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "groff-base"], env=env)
    if r.returncode != 0 or not shutil.which("groff"):
        raise CorpusError("groff is needed for man pages and `apt-get install groff-base` failed: "
                          "%s" % r.stderr.decode(errors="replace").strip()[-500:])


def tidy_rendered(text):
    """Rendered man page: trailing blanks removed, runs of blank lines cut to one."""
    lines = [ln.rstrip() for ln in text.split("\n")]
    out = []
    for ln in lines:
        if ln == "" and (not out or out[-1] == ""):
            continue
        out.append(ln)
    return "\n".join(out).strip("\n")


def render_man_batch(pages):
    """Render [(name, source)] with one groff call; return [text] or None when the page marks
    do not come out one per page (a page swallowed one), so the caller renders one by one."""
    src = [GROFF_PRELUDE]
    for _name, s in pages:
        src.append(".nh\n.ad l\n")
        src.append(s)
        src.append("\n.br\n%s\n" % MAN_MARK)
    r = run(GROFF, input="".join(src).encode("utf-8", "surrogateescape"))
    out = r.stdout.decode("utf-8", "replace")
    parts = [p for p in re.split(r"^[ \t]*" + re.escape(MAN_MARK) + r"[ \t]*$", out,
                                 flags=re.M)]
    if len(parts) != len(pages) + 2:
        return None
    return [tidy_rendered(p) for p in parts[1:-1]]


def build_manpages(debs, log):
    ensure_groff(log)
    pages = []
    for pkg in ("manpages", "manpages-dev"):
        for name, data in deb_members(
                debs[pkg], lambda n, s: re.fullmatch(r"usr/share/man/man[^/]+/[^/]+\.gz", n)
                is not None):
            src = gzip.decompress(data).decode("utf-8", "surrogateescape")
            first = next((ln for ln in src.splitlines()
                          if ln.strip() and not ln.startswith(('.\\"', "'\\\""))), "")
            if first.startswith(".so "):
                continue  # a stub pointing at another page
            pages.append((name[len("usr/share/man/"):-3], src))
    pages.sort()
    docs = {}
    batch = 200
    for i in range(0, len(pages), batch):
        chunk = pages[i:i + batch]
        texts = render_man_batch(chunk)
        if texts is None:
            texts = []
            for p in chunk:
                t = render_man_batch([p])
                texts.append(t[0] if t else "")
        for (name, _src), text in zip(chunk, texts):
            if text.strip():
                docs[name] = clean_text(text)
    return docs


DICTD_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def dictd_number(s):
    """A dictd index number: base 64 in DICTD_DIGITS, most significant digit first."""
    v = 0
    for ch in s:
        v = v * 64 + DICTD_DIGITS.index(ch)
    return v


def dictd_entries(index_text, dict_bytes, label):
    """Documents of a dictd database: {label:headword#offset: text}, one per distinct entry,
    without the 00-database-* entries. Entries that are not UTF-8 are read as Windows-1252."""
    docs = {}
    seen = set()
    for line in index_text.splitlines():
        f = line.split("\t")
        if len(f) < 3:
            continue
        head = f[0]
        if head.startswith("00-database") or head.startswith("00database"):
            continue
        off, length = dictd_number(f[1]), dictd_number(f[2])
        if (off, length) in seen or off + length > len(dict_bytes):
            continue
        seen.add((off, length))
        raw = dict_bytes[off:off + length]
        text = decode_utf8(raw)
        if text is None:
            text = raw.decode("cp1252", "replace")
        text = clean_text(text)
        if text:
            docs["%s:%s#%d" % (label, head, off)] = text
    return docs


def dictd_domain(debs, dbs):
    docs = {}
    for pkg, db in dbs:
        index = dz = None
        for name, data in deb_members(
                debs[pkg], lambda n, s: n in ("usr/share/dictd/%s.index" % db,
                                              "usr/share/dictd/%s.dict.dz" % db)):
            if name.endswith(".index"):
                index = data.decode("utf-8", "replace")
            else:
                dz = gzip.decompress(data)
        if index is None or dz is None:
            raise CorpusError("%s: no usr/share/dictd/%s.index and .dict.dz" % (pkg, db))
        docs.update(dictd_entries(index, dz, db))
    return docs


def build_dictionary(debs, log):
    return dictd_domain(debs, [("dict-gcide", "gcide")])


def build_encyclopedia(debs, log):
    return dictd_domain(debs, [("dict-foldoc", "foldoc"), ("dict-jargon", "jargon")])


OVERSTRIKE = re.compile(r"[^\x08]\x08")


def fortune_documents(text, label):
    """The quotes of one fortune file: split on lines holding only %, overstrike and BEL gone."""
    docs = {}
    text = OVERSTRIKE.sub("", text).replace("\x08", "").replace("\x07", "")
    for i, quote in enumerate(re.split(r"^%[ \t]*$", text, flags=re.M)):
        q = clean_text(quote)
        if q:
            docs["%s:%d" % (label, i)] = q
    return docs


QUOTE_PACKAGES = ["fortunes", "fortunes-min", "fortune-anarchism", "fortunes-bofh-excuses"]


def build_quotes(debs, log):
    docs = {}
    prefix = "usr/share/games/fortunes/"
    for pkg in QUOTE_PACKAGES:
        for name, data in deb_members(
                debs[pkg], lambda n, s: n.startswith(prefix) and "/" not in n[len(prefix):]
                and not n.endswith((".dat", ".u8")) and n[len(prefix):] != "ascii-art"):
            text = decode_utf8(data)
            if text is None:
                text = data.decode("latin-1")
            docs.update(fortune_documents(text, name[len(prefix):]))
    return docs


def paragraphs(text):
    return [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


def para_key(p):
    return " ".join(p.split())


def build_legal(debs, log):
    docs = {}
    for name, data in deb_members(
            debs["base-files"], lambda n, s: n.startswith("usr/share/common-licenses/")):
        text = decode_utf8(data)
        if text is not None:
            docs["common-licenses/" + name.rsplit("/", 1)[1]] = clean_text(text)
    for name, data in deb_members(
            debs["doc-debian"], lambda n, s: n in ("usr/share/doc/debian/constitution.txt.gz",
                                                   "usr/share/doc/debian/social-contract.txt.gz")):
        docs["debian/" + name.rsplit("/", 1)[1][:-3]] = clean_text(gzip.decompress(data))
    # The machine's copyright files, each paragraph kept only the first time it is seen (the
    # licence texts repeat across hundreds of packages). This part varies with what is installed.
    seen = set()
    for text in docs.values():
        for p in paragraphs(text.decode("utf-8", "replace")):
            seen.add(para_key(p))
    real = set()
    for path in sorted(glob.glob("/usr/share/doc/*/copyright")):
        rp = os.path.realpath(path)
        if rp in real or not os.path.isfile(rp):
            continue
        real.add(rp)
        try:
            with open(rp, "rb") as f:
                text = decode_utf8(f.read())
        except OSError:
            continue
        if text is None:
            continue
        kept = []
        for p in paragraphs(text):
            k = para_key(p)
            if k in seen:
                continue
            seen.add(k)
            kept.append(p)
        body = clean_text("\n\n".join(kept))
        if body:
            docs["copyright/" + path.split("/")[-2]] = body
    return docs


# --- scripture: SWORD zText / zCom modules (blocks of zlib text with a verse index) ----------

def sword_module_verses(files, testament):
    """Entries of one testament of a SWORD zText/zCom module, in index order: a list of
    (block number, raw OSIS text). The module holds zlib blocks (?zz) listed in ?zs (offset,
    compressed size, size: 3 uint32) and a verse index (?zv) of (block, offset, size) entries,
    with a 16-bit size (zText, zCom) or a 32-bit one (zText4, zCom4); the entry size is the one
    under which every entry falls inside its block. The letter ? is the block type (b, c, v)."""
    stem = None
    for letter in "bcv":
        if testament + "." + letter + "zv" in files:
            stem = testament + "." + letter + "z"
    if stem is None:
        return []
    idx, bsz, dat = files[stem + "v"], files.get(stem + "s", b""), files.get(stem + "z", b"")
    blocks = []
    for i in range(0, len(bsz) - 11, 12):
        off, csize, _usize = struct.unpack("<3I", bsz[i:i + 12])
        blocks.append(zlib.decompress(dat[off:off + csize]) if csize else b"")
    for fmt in ("<III", "<IIH"):
        esize = struct.calcsize(fmt)
        if len(idx) % esize:
            continue
        entries = [struct.unpack(fmt, idx[i:i + esize]) for i in range(0, len(idx), esize)]
        if all(sz == 0 or (b < len(blocks) and o + sz <= len(blocks[b])) for b, o, sz in entries):
            out, seen = [], set()
            for b, o, sz in entries:  # commentaries point many verses at one text: keep one
                if sz and (b, o, sz) not in seen:
                    seen.add((b, o, sz))
                    out.append((b, blocks[b][o:o + sz].decode("utf-8", "replace")))
            return out
    raise CorpusError("SWORD module %s: the verse index does not match its blocks" % stem)


OSIS_TAG = re.compile(r"<[^>]*>")
CHAPTER_ID = re.compile(r'<chapter[^>]*\bsID="([^"]+)"')


def osis_to_text(s):
    s = re.sub(r"<note[^>]*>.*?</note>", "", s, flags=re.S)
    s = re.sub(r"<(title|div)[^>]*/?>", "\n", s)
    s = OSIS_TAG.sub("", s)
    s = s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    return re.sub(r"[ \t]+", " ", s).strip()


def build_scripture(debs, log):
    """One document per chapter where the module marks chapters (OSIS <chapter sID>), else one
    per compressed block (a book or a chapter, by the module's block type)."""
    docs = {}
    mods = [("sword-text-web", "texts/ztext/engWEB2015eb/", "web"),
            ("sword-comm-tdavid", "comments/zcom/tdavid/", "tdavid"),
            ("sword-comm-mhcc", "comments/zcom/mhcc/", "mhcc")]
    for pkg, sub, label in mods:
        prefix = "usr/share/sword/modules/" + sub
        files = {}
        for name, data in deb_members(debs[pkg], lambda n, s: n.startswith(prefix)):
            files[name[len(prefix):]] = data
        if not files:
            raise CorpusError("%s: no SWORD module under /%s" % (pkg, prefix))
        for testament in ("ot", "nt"):
            cur_name, cur = None, []
            last_block = None
            for block, raw in sword_module_verses(files, testament):
                m = CHAPTER_ID.search(raw)
                if m or cur_name is None or (block != last_block and "chapter" not in cur_name):
                    if cur_name:
                        docs[cur_name] = clean_text("\n".join(x for x in cur if x))
                    cur_name = ("%s:chapter:%s" % (label, m.group(1)) if m
                                else "%s:%s:block%d" % (label, testament, block))
                    cur = []
                last_block = block
                cur.append(osis_to_text(raw))
            if cur_name:
                docs[cur_name] = clean_text("\n".join(x for x in cur if x))
    return {k: v for k, v in docs.items() if v}


# ---------------------------------------------------------------------------------------------
# The domains of docs/corpus.md (Debian 12 package names)


class Domain:
    def __init__(self, name, packages, licence, builder, what):
        self.name, self.packages, self.licence = name, packages, licence
        self.builder, self.what = builder, what


DOMAINS = [
    Domain("code_c", ["glibc-source"], "LGPL-2.1+", build_code_c,
           "glibc 2.36 *.c/*.h under 100 kB"),
    Domain("code_python", PY_PACKAGES, "PSF-2", build_code_python,
           "Python 3.11 standard library and tests, *.py under 300 kB"),
    Domain("tech_docs", ["linux-doc-6.1"], "GPL-2", build_tech_docs,
           "Linux 6.1 Documentation/**/*.rst outside translations/"),
    Domain("manpages", ["manpages", "manpages-dev"], "free (man-pages licences)",
           build_manpages, "Linux man-pages rendered with groff"),
    Domain("dictionary", ["dict-gcide"], "GPL-2+", build_dictionary,
           "GNU Collaborative International Dictionary of English, one entry per document"),
    Domain("encyclopedia", ["dict-foldoc", "dict-jargon"], "GFDL-1.1+ / public domain",
           build_encyclopedia, "FOLDOC and the Jargon File, one entry per document"),
    Domain("quotes", QUOTE_PACKAGES, "BSD collection", build_quotes,
           "fortune cookies, one quote per document"),
    Domain("legal", ["base-files", "doc-debian"], "various free", build_legal,
           "common licences, Debian constitution and social contract, this machine's "
           "copyright files (deduplicated paragraphs; so this domain varies by machine)"),
    Domain("scripture", ["sword-text-web", "sword-comm-tdavid", "sword-comm-mhcc"],
           "public domain", build_scripture,
           "World English Bible, one chapter per document, and two commentaries"),
]
DOMAIN_BY_NAME = {d.name: d for d in DOMAINS}
DEFAULT_DOMAINS = [d.name for d in DOMAINS]  # the eight of docs/corpus.md and scripture (cheap)


def from_dir_domain(root, name):
    """A domain read from ROOT/NAME: every regular file under it is one document."""
    base = os.path.join(root, name)

    def builder(_debs, _log):
        docs = {}
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for fn in sorted(filenames):
                p = os.path.join(dirpath, fn)
                if os.path.isfile(p):
                    with open(p, "rb") as f:
                        text = clean_text(f.read())
                    if text:
                        docs[os.path.relpath(p, base)] = text
        return docs

    return Domain(name, [], "see " + base, builder, "files under " + base)


# ---------------------------------------------------------------------------------------------
# Manifest and spec


def load_manifest(out):
    path = os.path.join(out, "manifest.json")
    try:
        with open(path) as f:
            m = json.load(f)
        if isinstance(m, dict) and isinstance(m.get("domains"), dict):
            return m
    except (OSError, ValueError):
        pass
    return {"domains": {}}


def save_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def entry_is_current(out, entry, config):
    """True if the manifest entry was built with config and its shards are intact on disk."""
    if not entry or entry.get("config") != config:
        return False
    d = os.path.join(out, entry.get("dir", ""))
    for key in ("train_shards", "valid_shards"):
        for sh in entry.get(key, []):
            p = os.path.join(d, sh["file"])
            try:
                if os.path.getsize(p) != HEADER_INTS * 4 + 2 * sh["tokens"]:
                    return False
            except OSError:
                return False
    return bool(entry.get("train_shards"))


def yaml_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_spec(out, manifest, names, glob_root):
    root = glob_root if glob_root else os.path.abspath(out)
    lines = ["# Domains of the corpus built by scripts/build-corpus.py; paste into a sweep spec.",
             "# tokens: training tokens (byte-level, vocab 256, separator token %d before each"
             % SEPARATOR,
             "# document); bytes_per_token: 1 (one token per byte of text).",
             "domains:"]
    for n in names:
        e = manifest["domains"][n]
        lines += ["  - name: %s" % n,
                  "    tokens: %d" % e["train_tokens"],
                  "    bytes_per_token: 1.0",
                  "    train: %s" % yaml_quote(root.rstrip("/") + "/%s/train_*.bin" % n),
                  "    valid: %s" % yaml_quote(root.rstrip("/") + "/%s/val_*.bin" % n)]
    path = os.path.join(out, "spec-domains.yaml")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)
    return path


# ---------------------------------------------------------------------------------------------
# Building one domain


def build_domain(dom, out, debs, config, log):
    t0 = time.time()
    docs = dom.builder(debs, log)
    if not docs:
        raise CorpusError("domain %s: no documents found" % dom.name)
    avail_bytes = sum(len(v) for v in docs.values())
    t_extract = time.time() - t0
    train, valid = select_and_split(docs, int(config["max_mb"] * MB),
                                    config["valid_fraction"])
    final = os.path.join(out, dom.name)
    tmp = os.path.join(out, ".%s.tmp" % dom.name)
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    shard_tokens = max(1, int(config["shard_mb"] * MB))
    tsh = write_split(tmp, "train", train, shard_tokens)
    vsh = write_split(tmp, "val", valid, shard_tokens) if valid else []
    old = os.path.join(out, ".%s.old" % dom.name)
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(final):
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    entry = {
        "dir": dom.name,
        "description": dom.what,
        "licence": dom.licence,
        "packages": {p: os.path.basename(debs[p]) for p in dom.packages},
        "documents_available": len(docs),
        "text_bytes_available": avail_bytes,
        "train_documents": len(train),
        "valid_documents": len(valid),
        "train_tokens": sum(s[1] for s in tsh),
        "valid_tokens": sum(s[1] for s in vsh),
        "text_bytes": sum(len(d) for _, d in train) + sum(len(d) for _, d in valid),
        "train_shards": [{"file": f, "tokens": n, "documents": k} for f, n, k in tsh],
        "valid_shards": [{"file": f, "tokens": n, "documents": k} for f, n, k in vsh],
        "train_glob": "%s/train_*.bin" % dom.name,
        "valid_glob": "%s/val_*.bin" % dom.name,
        "config": config,
        "built": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": round(time.time() - t0, 2),
        "extract_seconds": round(t_extract, 2),
    }
    return entry


# ---------------------------------------------------------------------------------------------
# Command line


USAGE_EXAMPLE = """\
Example:
  scripts/build-corpus.py --out corpus --cache corpus-cache
  scripts/build-corpus.py --domains code_c,quotes --max-mb 2 --out /tmp/small
  scripts/build-corpus.py --from-dir my-texts --out my-corpus   # one folder per domain

Domains (Debian 12 packages):
%s
"""


def parse_args(argv):
    table = "\n".join("  %-13s %-60s %s" % (d.name, " ".join(d.packages), d.licence)
                      for d in DOMAINS)
    p = argparse.ArgumentParser(
        prog="build-corpus.py",
        description="Build a multi-domain byte-level corpus (llm.c .bin shards, vocab 256, "
        "separator token 0 before each document) from Debian packages fetched with "
        "`apt-get download`, and write OUT/manifest.json and OUT/spec-domains.yaml.",
        epilog=USAGE_EXAMPLE % table, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="corpus", help="output directory (default ./corpus)")
    p.add_argument("--cache", default="corpus-cache",
                   help="where the downloaded .deb files are kept (default ./corpus-cache)")
    p.add_argument("--domains", default=None,
                   help="comma-separated domains (default: %s)" % ",".join(DEFAULT_DOMAINS))
    p.add_argument("--max-mb", type=float, default=8.0,
                   help="cap on the text of each domain in MB (10^6 bytes), documents chosen "
                   "by a hash of their names; 0 = no cap (default 8)")
    p.add_argument("--valid-fraction", type=float, default=0.02,
                   help="fraction of documents (by name hash) for validation (default 0.02)")
    p.add_argument("--shard-mb", type=float, default=4.0,
                   help="tokens per shard in millions (a document never spans shards; "
                   "default 4)")
    p.add_argument("--from-dir", default=None, metavar="DIR",
                   help="read domains from DIR/<domain>/** (each file one document) instead "
                   "of Debian packages; default domains: every folder of DIR")
    p.add_argument("--glob-root", default=None, metavar="PATH",
                   help="directory the globs in spec-domains.yaml start with (default: the "
                   "absolute --out path), e.g. where the corpus is mounted on the workers")
    p.add_argument("--force", action="store_true", help="rebuild domains that are up to date")
    p.add_argument("--quiet", action="store_true", help="print only the table")
    p.add_argument("--version", action="version", version="%(prog)s " + VERSION)
    a = p.parse_args(argv)
    if not 0 <= a.valid_fraction < 1:
        p.error("--valid-fraction must be in [0, 1)")
    if a.max_mb < 0 or a.shard_mb <= 0:
        p.error("--max-mb must be >= 0 and --shard-mb > 0")
    return a


def main(argv):
    args = parse_args(argv)
    t_start = time.time()

    def log(msg):
        if not args.quiet:
            print("build-corpus: " + msg, file=sys.stderr, flush=True)

    if args.from_dir:
        if not os.path.isdir(args.from_dir):
            print("build-corpus: --from-dir %s: not a directory" % args.from_dir, file=sys.stderr)
            return EXIT_USAGE
        avail = sorted(n for n in os.listdir(args.from_dir)
                       if os.path.isdir(os.path.join(args.from_dir, n)) and not n.startswith("."))
        names = [n.strip() for n in args.domains.split(",")] if args.domains else avail
        bad = [n for n in names if n not in avail]
        doms = [from_dir_domain(args.from_dir, n) for n in names if n in avail]
    else:
        names = ([n.strip() for n in args.domains.split(",")] if args.domains
                 else list(DEFAULT_DOMAINS))
        bad = [n for n in names if n not in DOMAIN_BY_NAME]
        doms = [DOMAIN_BY_NAME[n] for n in names if n in DOMAIN_BY_NAME]
    if bad or not names or len(set(names)) != len(names):
        print("build-corpus: unknown or repeated domain(s): %s (known: %s)"
              % (",".join(bad) or ",".join(names),
                 ",".join(avail if args.from_dir else DOMAIN_BY_NAME)), file=sys.stderr)
        return EXIT_USAGE
    for n in names:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", n):
            print("build-corpus: domain name %r: use 1 to 64 letters, digits, _ . -" % n,
                  file=sys.stderr)
            return EXIT_USAGE

    os.makedirs(args.out, exist_ok=True)
    # One build at a time per output directory: a second one waits for the first.
    lock = open(os.path.join(args.out, ".lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log("another build-corpus holds %s; waiting" % os.path.join(args.out, ".lock"))
        fcntl.flock(lock, fcntl.LOCK_EX)
    manifest = load_manifest(args.out)
    manifest["format"] = {
        "shard": "llm.c .bin: 256 int32 header (magic %d, version %d, token count), uint16 "
                 "tokens" % (MAGIC, SHARD_VERSION),
        "tokenizer": "bytes (vocab 256): token = byte of the UTF-8 text",
        "separator_token": SEPARATOR,
        "separator_position": "before every document",
        "split": "whole documents; validation if sha1('valid\\0'+name)[:8] / 2^64 < fraction",
        "builder": "scripts/build-corpus.py %s" % VERSION,
    }
    status = {}
    try:
        todo = []
        for dom in doms:
            config = {"builder": BUILDER_VERSION, "max_mb": args.max_mb,
                      "valid_fraction": args.valid_fraction, "shard_mb": args.shard_mb,
                      "source": ("dir:" + os.path.abspath(args.from_dir)) if args.from_dir
                      else "debian"}
            entry = manifest["domains"].get(dom.name)
            # A different .deb in the cache (a newer version was fetched) also means a rebuild;
            # an emptied cache does not (the shards are kept, nothing is fetched).
            debs_changed = entry and any(
                cached_deb(args.cache, p) and os.path.basename(cached_deb(args.cache, p))
                != entry.get("packages", {}).get(p) for p in dom.packages)
            if not args.force and not debs_changed and entry_is_current(args.out, entry, config):
                status[dom.name] = "cached"
            else:
                todo.append((dom, config))
        pkgs = []
        for dom, _ in todo:
            pkgs += [p for p in dom.packages if p not in pkgs]
        debs = fetch_packages(pkgs, args.cache, log) if pkgs else {}
        for dom, config in todo:
            log("building %s from %s" % (dom.name, " ".join(dom.packages) or args.from_dir))
            entry = build_domain(dom, args.out, debs, config, log)
            manifest["domains"][dom.name] = entry
            save_json(os.path.join(args.out, "manifest.json"), manifest)
            status[dom.name] = "built"
            log("%s: %d documents, %.1f MB in %.1f s"
                % (dom.name, entry["train_documents"] + entry["valid_documents"],
                   entry["text_bytes"] / MB, entry["seconds"]))
    except CorpusError as e:
        print("build-corpus: error: %s" % e, file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130
    save_json(os.path.join(args.out, "manifest.json"), manifest)
    spec = write_spec(args.out, manifest, names, args.glob_root)

    hdr = "%-13s %-6s %9s %9s %8s %12s %11s" % ("domain", "state", "train_doc", "valid_doc",
                                                "text_MB", "train_tokens", "val_tokens")
    print(hdr)
    tt = tv = tb = 0
    for n in names:
        e = manifest["domains"][n]
        print("%-13s %-6s %9d %9d %8.2f %12d %11d" % (
            n, status[n], e["train_documents"], e["valid_documents"], e["text_bytes"] / MB,
            e["train_tokens"], e["valid_tokens"]))
        tt += e["train_tokens"]
        tv += e["valid_tokens"]
        tb += e["text_bytes"]
    print("%-13s %-6s %9s %9s %8.2f %12d %11d" % ("total", "", "", "", tb / MB, tt, tv))
    print("manifest: %s\nspec:     %s\ntime:     %.1f s"
          % (os.path.join(args.out, "manifest.json"), spec, time.time() - t_start))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
