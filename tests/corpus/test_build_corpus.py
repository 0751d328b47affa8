#!/usr/bin/env python3
"""Tests of scripts/build-corpus.py that download nothing: the llm.c shard writer and reader,
the name-hash split, the dictd and fortune parsers on small inputs, and whole runs of the
script in --from-dir mode on a tiny fake corpus (manifest, spec, idempotence, --force, errors).

Run: python3 tests/corpus/test_build_corpus.py  (or `meson test --suite corpus`).
"""

import importlib.util
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("REGMIX_SOURCE_ROOT") or os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(ROOT, "scripts", "build-corpus.py")

_spec = importlib.util.spec_from_file_location("build_corpus", SCRIPT)
bc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bc)


def slurp(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def run_script(*args):
    return subprocess.run([sys.executable, SCRIPT] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60)


class ShardTest(unittest.TestCase):
    def test_round_trip(self):
        docs = [("a", b"hello"), ("b", "caf\u00e9 \u2603".encode()), ("c", bytes(range(1, 256)))]
        with tempfile.TemporaryDirectory() as d:
            shards = bc.write_split(d, "train", docs, shard_tokens=10**9)
            self.assertEqual([s[0] for s in shards], ["train_000.bin"])
            path = os.path.join(d, "train_000.bin")
            ntok = sum(1 + len(x) for _, x in docs)
            self.assertEqual(shards[0][1], ntok)
            self.assertEqual(os.path.getsize(path), 1024 + 2 * ntok)
            with open(path, "rb") as f:
                head = struct.unpack("<256i", f.read(1024))
                body = f.read()
            self.assertEqual(head[:3], (20240520, 1, ntok))
            self.assertEqual(set(head[3:]), {0})
            # Independent decoding: little-endian uint16, separator 0 before every document.
            toks = list(struct.unpack("<%dH" % ntok, body))
            self.assertEqual(toks[0], 0)
            self.assertEqual(toks[1:6], list(b"hello"))
            self.assertEqual(max(toks), 255)
            self.assertEqual(toks.count(0), len(docs))
            self.assertEqual(bc.split_documents(bc.read_shard(path)), [x for _, x in docs])

    def test_documents_never_span_shards(self):
        docs = [("d%d" % i, b"x" * (10 + i)) for i in range(20)]
        with tempfile.TemporaryDirectory() as d:
            shards = bc.write_split(d, "val", docs, shard_tokens=50)
            self.assertGreater(len(shards), 3)
            back = []
            for fname, ntok, ndocs in shards:
                self.assertTrue(re.fullmatch(r"val_\d{3}\.bin", fname))
                got = bc.split_documents(bc.read_shard(os.path.join(d, fname)))
                self.assertEqual(len(got), ndocs)
                self.assertEqual(sum(1 + len(x) for x in got), ntok)
                back += got
            self.assertEqual(back, [x for _, x in docs])

    def test_reader_rejects_bad_files(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "s.bin")
            bc.write_split(d, "s", [("a", b"abc")], 100)
            good = slurp(os.path.join(d, "s_000.bin"))
            for bad in (good[:-1], good[:100], struct.pack("<i", 7) + good[4:],
                        good[:4] + struct.pack("<i", 2) + good[8:]):
                with open(p, "wb") as f:
                    f.write(bad)
                with self.assertRaises(bc.CorpusError):
                    bc.read_shard(p)


class SplitTest(unittest.TestCase):
    def test_hash_is_pinned(self):
        # sha1(b"valid\0doc-1") = 3f6a..., first 8 bytes big-endian: changing the hash would
        # silently move documents between train and validation of existing corpora.
        import hashlib
        want = int.from_bytes(hashlib.sha1(b"valid\0doc-1").digest()[:8], "big")
        self.assertEqual(bc.name_hash("valid", "doc-1"), want)
        self.assertNotEqual(bc.name_hash("pick", "doc-1"), want)

    def test_fraction_and_determinism(self):
        docs = {"doc-%d" % i: b"y" * (1 + i % 7) for i in range(5000)}
        train, valid = bc.select_and_split(docs, 0, 0.02)
        self.assertEqual(len(train) + len(valid), 5000)
        self.assertFalse({n for n, _ in train} & {n for n, _ in valid})
        # Binomial(5000, 0.02): mean 100, sd 9.9; 60..140 is four sd.
        self.assertTrue(60 <= len(valid) <= 140, len(valid))
        self.assertTrue(all(bc.is_validation(n, 0.02) for n, _ in valid))
        self.assertEqual((train, valid), bc.select_and_split(dict(reversed(docs.items())), 0,
                                                             0.02))

    def test_cap_and_nonempty_sides(self):
        docs = {"n%d" % i: b"z" * 100 for i in range(100)}
        train, valid = bc.select_and_split(docs, 1050, 0.02)
        self.assertEqual(len(train) + len(valid), 11)  # stops once 1050 bytes are reached
        self.assertGreaterEqual(len(valid), 1)
        self.assertGreaterEqual(len(train), 1)
        # Growing the cap only adds documents: the smaller selection is a prefix.
        t2, v2 = bc.select_and_split(docs, 3000, 0.02)
        self.assertTrue({n for n, _ in train + valid} <= {n for n, _ in t2 + v2})


class ParserTest(unittest.TestCase):
    def test_dictd(self):
        self.assertEqual(bc.dictd_number("A"), 0)
        self.assertEqual(bc.dictd_number("BA"), 64)
        self.assertEqual(bc.dictd_number("/"), 63)
        digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

        def enc(v):  # dictd's base 64, most significant digit first
            s = ""
            while True:
                s = digits[v % 64] + s
                v //= 64
                if not v:
                    return s

        self.assertEqual(bc.dictd_number(enc(123456789)), 123456789)
        parts = [b"00-database-info\nabout\n", b"Apple\n  a fruit\n", b"Caf\xe9\n  (cp1252)\n"]
        body = b"".join(parts)
        o1, o2 = len(parts[0]), len(parts[0]) + len(parts[1])
        index = "".join("%s\t%s\t%s\n" % (h, enc(o), enc(n)) for h, o, n in (
            ("00-database-info", 0, len(parts[0])), ("apple", o1, len(parts[1])),
            ("apples", o1, len(parts[1])), ("cafe", o2, len(parts[2])), ("bad", o2, 999)))
        docs = bc.dictd_entries(index, body, "t")
        self.assertEqual(sorted(docs), ["t:apple#%d" % o1, "t:cafe#%d" % o2])
        self.assertEqual(docs["t:apple#%d" % o1], b"Apple\n  a fruit")
        self.assertEqual(docs["t:cafe#%d" % o2], "Caf\u00e9\n  (cp1252)".encode())

    def test_fortunes(self):
        text = "One\n%\nT\x08Tw_\x08o\x07\n%\n\n%\nThree\nlines\n"
        docs = bc.fortune_documents(text, "f")
        self.assertEqual(list(docs.values()), [b"One", b"Two", b"Three\nlines"])


class FromDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.src = os.path.join(self.tmp.name, "src")
        self.out = os.path.join(self.tmp.name, "out")
        for dom, n in (("alpha", 60), ("beta", 30)):
            os.makedirs(os.path.join(self.src, dom, "sub"))
            for i in range(n):
                sub = "sub" if i % 2 else ""
                with open(os.path.join(self.src, dom, sub, "doc%03d.txt" % i), "wb") as f:
                    f.write(("%s document %d\n" % (dom, i)).encode() * (1 + i % 5) + b"\0")

    def tearDown(self):
        self.tmp.cleanup()

    def build(self, *extra):
        return run_script("--from-dir", self.src, "--out", self.out, "--quiet",
                          "--valid-fraction", "0.1", "--shard-mb", "0.001", *extra)

    def test_run_manifest_spec_and_cache(self):
        r = self.build()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"alpha\s+built")
        m = json.loads(slurp(os.path.join(self.out, "manifest.json"), "r"))
        self.assertEqual(m["format"]["separator_token"], 0)
        for dom, n in (("alpha", 60), ("beta", 30)):
            e = m["domains"][dom]
            self.assertEqual(e["train_documents"] + e["valid_documents"], n)
            self.assertGreaterEqual(e["valid_documents"], 1)
            got = []
            for key, prefix in (("train_shards", "train_"), ("valid_shards", "val_")):
                total = 0
                for sh in e[key]:
                    self.assertTrue(sh["file"].startswith(prefix))
                    docs = bc.split_documents(bc.read_shard(os.path.join(self.out, dom,
                                                                         sh["file"])))
                    total += sum(1 + len(x) for x in docs)
                    got += docs
                self.assertEqual(total, e[key.replace("_shards", "_tokens")])
            self.assertGreater(len(e["train_shards"]), 1)  # 1000-token shards
            src = []
            for dp, _, fns in os.walk(os.path.join(self.src, dom)):
                for fn in fns:
                    src.append(slurp(os.path.join(dp, fn)).replace(b"\0", b"")
                               .strip())
            self.assertEqual(sorted(got), sorted(src))
        spec = slurp(os.path.join(self.out, "spec-domains.yaml"), "r")
        self.assertIn("domains:\n  - name: alpha\n    tokens: %d\n"
                      % m["domains"]["alpha"]["train_tokens"], spec)
        self.assertIn('train: "%s/beta/train_*.bin"' % os.path.abspath(self.out), spec)
        self.assertIn('valid: "%s/beta/val_*.bin"' % os.path.abspath(self.out), spec)

        # A second run rebuilds nothing; --force rebuilds byte-identical shards.
        shard = os.path.join(self.out, "alpha", "val_000.bin")
        before = (os.stat(shard).st_mtime_ns, slurp(shard))
        r = self.build()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"alpha\s+cached")
        self.assertEqual(os.stat(shard).st_mtime_ns, before[0])
        r = self.build("--force", "--domains", "alpha")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"alpha\s+built")
        self.assertNotRegex(r.stdout, r"beta")
        self.assertEqual(slurp(shard), before[1])
        # A changed setting rebuilds; a damaged shard is noticed and rebuilt.
        r = self.build("--max-mb", "0.0005")
        self.assertRegex(r.stdout, r"alpha\s+built")
        with open(shard, "ab") as f:
            f.write(b"xx")
        r = self.build("--max-mb", "0.0005")
        self.assertRegex(r.stdout, r"alpha\s+built")
        self.assertRegex(r.stdout, r"beta\s+cached")

    def test_errors_and_help(self):
        r = self.build("--domains", "alpha,nosuch")
        self.assertEqual(r.returncode, 2)
        self.assertIn("nosuch", r.stderr)
        r = run_script("--from-dir", os.path.join(self.tmp.name, "missing"), "--out", self.out)
        self.assertEqual(r.returncode, 2)
        r = run_script("--domains", "code_c,bogus", "--out", self.out)
        self.assertEqual(r.returncode, 2)
        r = run_script("--valid-fraction", "1.5")
        self.assertEqual(r.returncode, 2)
        r = run_script("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--max-mb", r.stdout)
        self.assertIn("Example", r.stdout)
        r = run_script("--version")
        self.assertEqual(r.returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
