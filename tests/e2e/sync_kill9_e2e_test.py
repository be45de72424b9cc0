#!/usr/bin/python3
"""End to end: `tessera sync` killed with SIGKILL mid-sync still converges.

Real processes only: the `fake_drive` binary serves a generated company (a few
hundred files in My Drive and a shared drive, shared with users, groups, the
domain), `tessera serve` holds the index, and `tessera sync` (the daemon, not
--once) syncs it page by page. Once the daemon has acknowledged some pages
(its run record in the state dir says so) it gets SIGKILL. The drive is then
mutated through fake_drive's stdin commands (edits, renames, trash, delete,
permission changes, moves into the shared drive, new files), and
`tessera sync --once` resumes from the checkpoints. The index must then equal
the source exactly: 0 missing, 0 stale, 0 deleted-but-searchable, ACLs equal
(each document's ACL read back, and searches as two users with different
access).

Each file's text carries a unique token per revision ("tk<id>r<rev>"), so a
BM25-only search for it finds that revision and nothing else. The seed is
printed; set SYNC_E2E_SEED to replay a run.
"""

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reflection_client  # noqa: E402

TMP = os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp()
DOMAIN = "acme.example"
DRIVE_USER = "admin@" + DOMAIN          # whose Drive the connector syncs
DRIVE_GROUPS = ["finance@" + DOMAIN]    # the drive user's groups
ANN = ("ann@" + DOMAIN, ["finance@" + DOMAIN])
BOB = ("bob@" + DOMAIN, ["eng@" + DOMAIN])
SHARED_DRIVE = "0AFinance"
SHARED_DRIVE_MEMBERS = [{"type": "group", "email": "finance@" + DOMAIN}]
COLLECTION = "acme"
CONNECTOR = "acme-drive"
N_FILES = 300
PAGE_SIZE = 10
KILL_AFTER_INDEXED = 60


def runfile(path):
    srcdir = os.environ.get("TEST_SRCDIR")
    workspace = os.environ.get("TEST_WORKSPACE", "tessera")
    if srcdir:
        return os.path.join(srcdir, workspace, path)
    return os.path.abspath(os.path.join("bazel-bin", path))


TESSERA = runfile("services/gateway/tessera")
FAKE_DRIVE = runfile("connectors/drive/fake_drive")


def read(path):
    with open(path) as f:
        return f.read()


def run_cli(*args, env=None, check=True, timeout=120):
    p = subprocess.run([TESSERA, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError("tessera %s failed (%d):\n%s\n%s" %
                             (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


class FakeDrive:
    """The fake_drive binary, driven by JSON commands on its stdin."""

    def __init__(self):
        self.proc = subprocess.Popen([FAKE_DRIVE, "--empty"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            raise AssertionError("fake_drive did not start: %r" % self.base_url)

    def do(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        if not answer.get("ok"):
            raise AssertionError("fake_drive %s: %s" % (cmd, answer))
        return answer

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc.stdin.close()
        self.proc.stdout.close()


class Server:
    """`tessera serve` on a free port."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.port_file = data_dir + ".port"
        self.log_path = data_dir + ".log"

    def start(self):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [TESSERA, "serve", "--data_dir=" + self.data_dir, "--listen=127.0.0.1:0",
             "--port_file=" + self.port_file, "--grace_period=2s"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("tessera serve exited early:\n" + read(self.log_path))
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    text = f.read().strip()
                if text:
                    self.address = "127.0.0.1:" + text
                    return self
            time.sleep(0.05)
        raise AssertionError("tessera serve did not start:\n" + read(self.log_path))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def perm_principal(p):
    if p["type"] in ("user", "group"):
        return "%s:%s" % (p["type"], p["email"].lower())
    if p["type"] == "domain":
        return "domain:" + p["domain"].lower()
    return "anyone"


class Company:
    """The source of truth: what the fake drive holds, as the test made it."""

    def __init__(self, rng):
        self.rng = rng
        self.files = {}      # id -> {name, rev, drive_id, perms: [(perm_id|None, perm)], gone}
        self.next = 0

    def random_perms(self):
        choices = [
            {"type": "user", "email": ANN[0]},
            {"type": "user", "email": BOB[0]},
            {"type": "group", "email": "finance@" + DOMAIN},
            {"type": "group", "email": "eng@" + DOMAIN},
            {"type": "domain", "domain": DOMAIN},
        ]
        perms = [p for p in choices if self.rng.random() < 0.25]
        if self.rng.random() < 0.03:
            perms.append({"type": "anyone"})
        return perms

    def content(self, fid):
        f = self.files[fid]
        return "%s. Notes for the quarter, revision %d. tk%sr%d acmecorpus\n" % (
            f["name"], f["rev"], fid, f["rev"])

    def create(self, drive):
        fid = "f%04d" % self.next
        self.next += 1
        shared = self.rng.random() < 0.2
        self.files[fid] = {"name": "Report %s" % fid, "rev": 1,
                           "drive_id": SHARED_DRIVE if shared else "",
                           "perms": [], "gone": False,
                           "mime": self.rng.choice(["text/plain", "text/plain",
                                                    "application/vnd.google-apps.document"])}
        perms = self.random_perms()
        ans = drive.do(op="create", file={
            "id": fid, "name": self.files[fid]["name"], "mime_type": self.files[fid]["mime"],
            "content": self.content(fid), "drive_id": self.files[fid]["drive_id"],
            "permissions": perms})
        assert ans["id"] == fid
        # Permission ids are generated by the fake; learn them as shares do.
        self.files[fid]["perms"] = [(None, p) for p in perms]
        return fid

    def live(self):
        return [fid for fid, f in sorted(self.files.items()) if not f["gone"]]

    def acl(self, fid):
        f = self.files[fid]
        out = set(perm_principal(p) for _, p in f["perms"])
        if f["drive_id"]:
            out |= set(perm_principal(p) for p in SHARED_DRIVE_MEMBERS)
        else:
            out.add("user:" + DRIVE_USER)
        return out


def expand(user, groups):
    out = {"user:" + user, "domain:" + user.split("@")[1], "anyone"}
    out |= {"group:" + g for g in groups}
    return out


class SyncKill9Test(unittest.TestCase):
    def setUp(self):
        seed = int(os.environ.get("SYNC_E2E_SEED", random.SystemRandom().randrange(1 << 30)))
        print("SYNC_E2E_SEED=%d" % seed, flush=True)
        self.rng = random.Random(seed)
        self.work = tempfile.mkdtemp(dir=TMP)
        self.drive = FakeDrive()
        self.server = Server(os.path.join(self.work, "data"))
        self.admin_key = run_cli("admin", "create-key", "--data_dir=" + self.server.data_dir,
                                 "--principal=root@" + DOMAIN, "--role=admin").stdout.strip()
        self.server.start()
        self.client = reflection_client.Client(self.server.address, key=self.admin_key)
        self.env = dict(os.environ, TESSERA_KEY=self.admin_key)
        self.sync_config = os.path.join(self.work, "sync.json")
        self.state_dir = self.sync_config + ".state"
        self.daemon = None
        self.daemon_log = None

    def tearDown(self):
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait()
        if self.daemon_log is not None:
            self.daemon_log.close()
        self.server.stop()
        self.drive.stop()

    # --- helpers ----------------------------------------------------------

    def add_connector(self):
        """Through `tessera connector add` when the binary has it, else by hand."""
        conn = {"collection": COLLECTION, "interval": "1h",
                "drive": {"api_base": self.drive.base_url, "token": "e2e-token",
                          "page_size": PAGE_SIZE}}
        conn_file = os.path.join(self.work, "drive.json")
        with open(conn_file, "w") as f:
            json.dump(conn, f)
        p = run_cli("connector", "add", "drive", "--config=" + conn_file, "--name=" + CONNECTOR,
                    "--sync_config=" + self.sync_config, check=False)
        if p.returncode == 0:
            listed = run_cli("connector", "list", "--sync_config=" + self.sync_config).stdout
            self.assertIn(CONNECTOR, listed)
            return True
        # A binary without the command says "unknown command" (or, before
        # main.cc hands --config to it, rejects drive.json as a flags file).
        if "unknown command" not in p.stderr and "not a flag of this program" not in p.stderr:
            raise AssertionError("connector add failed: %s" % p.stderr)
        print("note: this tessera has no `connector add`; writing %s directly" %
              self.sync_config, flush=True)
        conn.update(id=CONNECTOR, type="drive")
        with open(self.sync_config, "w") as f:
            json.dump({"connectors": [conn]}, f)
        return False

    def run_record(self):
        try:
            with open(os.path.join(self.state_dir, "runs", CONNECTOR + ".json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None  # not written yet, or mid-rename

    def search(self, query, user, groups, top_k=10):
        # Hybrid search always returns the nearest chunks too: callers look
        # for the token in the hits' text, or for the file's external id.
        req = {"collections": [COLLECTION], "query": query, "topK": top_k, "includeText": True,
               "principal": {"user": user, "groups": groups},
               "hybrid": {"vectorWeight": 0.0}}
        return self.client.call("tessera.v1.RetrievalService/Search", json.dumps(req)).get(
            "hits", [])

    def get_document(self, document_id, user, groups):
        req = {"collection": COLLECTION, "documentId": document_id,
               "principal": {"user": user, "groups": groups}}
        return self.client.call("tessera.v1.RetrievalService/GetDocument",
                                json.dumps(req))["document"]

    # --- mutations between the kill and the resumed run ------------------

    def mutate(self, company):
        live = company.live()
        self.rng.shuffle(live)
        counts = dict(edit=0, rename=0, trash=0, delete=0, share=0, unshare=0, move=0, create=0)
        for fid in live[:40]:
            f = company.files[fid]
            op = self.rng.choice(["edit", "edit", "rename", "trash", "delete", "share",
                                  "unshare", "move"])
            if op == "edit":
                f["rev"] += 1
                self.drive.do(op="edit", id=fid, content=company.content(fid))
            elif op == "rename":
                f["name"] = f["name"] + " (renamed)"
                self.drive.do(op="rename", id=fid, name=f["name"])
            elif op == "trash":
                f["gone"] = True
                self.drive.do(op="trash", id=fid)
            elif op == "delete":
                f["gone"] = True
                self.drive.do(op="delete", id=fid)
            elif op == "share":
                p = self.rng.choice([{"type": "user", "email": BOB[0]},
                                     {"type": "group", "email": "eng@" + DOMAIN},
                                     {"type": "domain", "domain": DOMAIN}])
                pid = self.drive.do(op="share", id=fid, permission=p)["permission_id"]
                f["perms"].append((pid, p))
            elif op == "unshare":
                known = [(i, pp) for i, pp in enumerate(f["perms"]) if pp[0] is not None]
                if not known:
                    # Unshare what we shared: share, then take it away again.
                    p = {"type": "user", "email": ANN[0]}
                    pid = self.drive.do(op="share", id=fid, permission=p)["permission_id"]
                    self.drive.do(op="unshare", id=fid, permission_id=pid)
                else:
                    i, (pid, _) = self.rng.choice(known)
                    self.drive.do(op="unshare", id=fid, permission_id=pid)
                    del f["perms"][i]
            elif op == "move":
                # Into the shared drive (its members' access), or back to My Drive.
                f["drive_id"] = "" if f["drive_id"] else SHARED_DRIVE
                self.drive.do(op="move", id=fid, parents=[], drive_id=f["drive_id"])
            counts[op] += 1
        for _ in range(20):
            company.create(self.drive)
            counts["create"] += 1
        return counts

    # --- the test -----------------------------------------------------------

    def test_kill9_mid_sync_then_resume_converges(self):
        company = Company(self.rng)
        self.drive.do(op="add_shared_drive", id=SHARED_DRIVE, name="Finance",
                      members=SHARED_DRIVE_MEMBERS)
        for _ in range(N_FILES):
            company.create(self.drive)
        used_cli = self.add_connector()

        # Slow the drive down so the daemon is caught mid-sync.
        self.drive.do(op="latency", ms=15)
        self.daemon_log = daemon_log = open(os.path.join(self.work, "daemon.log"), "w")
        self.daemon = subprocess.Popen(
            [TESSERA, "sync", "--sync_config=" + self.sync_config, "--server=" +
             self.server.address], env=self.env, stdout=daemon_log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        record = None
        while time.time() < deadline:
            record = self.run_record()
            if record and record.get("indexed", 0) >= KILL_AFTER_INDEXED:
                break
            if self.daemon.poll() is not None:
                self.fail("tessera sync exited early:\n" +
                          read(os.path.join(self.work, "daemon.log")))
            time.sleep(0.01)
        else:
            self.fail("the daemon indexed nothing in time; record %s\n%s" %
                      (record, read(os.path.join(self.work, "daemon.log"))))
        os.kill(self.daemon.pid, signal.SIGKILL)
        self.daemon.wait()
        daemon_log.close()
        record = self.run_record()
        print("killed mid-sync at %s" % record, flush=True)
        self.assertTrue(record["running"], record)
        self.assertLess(record["indexed"], N_FILES, "the first run finished before the kill")
        if used_cli:
            listed = run_cli("connector", "list", "--sync_config=" + self.sync_config).stdout
            self.assertIn("interrupted", listed, listed)

        # Half-synced index: some documents are searchable, not all.
        some = self.search("acmecorpus", DRIVE_USER, DRIVE_GROUPS, top_k=100)
        self.assertGreater(len(some), 0)

        print("mutations: %s" % self.mutate(company), flush=True)
        self.drive.do(op="latency", ms=0)

        p = run_cli("sync", "--once", "--sync_config=" + self.sync_config,
                    "--server=" + self.server.address, env=self.env, check=False, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("%s: done" % CONNECTOR, p.stdout)
        # Not a terminal here: plain progress lines, no escape sequences.
        self.assertNotIn("\x1b[", p.stdout + p.stderr)
        record = self.run_record()
        self.assertFalse(record["running"], record)
        self.assertEqual(record["error"], "", record)

        self.check_converged(company)

        if used_cli:
            listed = run_cli("connector", "list", "--sync_config=" + self.sync_config).stdout
            self.assertRegex(listed, r"acme-drive\s+drive\s+acme\s+every 1h\s+ok\s")

    def check_converged(self, company):
        missing, stale, zombies, acl_wrong, access_wrong, wrong_doc = [], [], [], [], [], []
        omni = (DRIVE_USER, ["finance@" + DOMAIN, "eng@" + DOMAIN])
        for fid, f in sorted(company.files.items()):
            token = "tk%sr%d" % (fid, f["rev"])
            hits = [h for h in self.search(token, *omni)
                    if h.get("externalId") == fid or token in h.get("text", "")]
            if f["gone"]:
                if hits:
                    zombies.append(fid)
                continue
            for old in range(1, f["rev"]):
                old_token = "tk%sr%d" % (fid, old)
                if [h for h in self.search(old_token, *omni) if old_token in h.get("text", "")]:
                    stale.append(old_token)
            if not hits:
                missing.append(fid)
                continue
            doc = self.get_document(hits[0]["documentId"], *omni)
            if doc.get("title") != f["name"] or doc.get("source") != "gdrive":
                wrong_doc.append((fid, doc.get("title"), f["name"]))
            want = company.acl(fid)
            if set(doc.get("acl", [])) != want:
                acl_wrong.append((fid, sorted(doc.get("acl", [])), sorted(want)))
            for user, groups in (ANN, BOB):
                sees = bool([h for h in self.search(token, user, groups)
                             if h.get("externalId") == fid])
                should = bool(want & expand(user, groups))
                if sees != should:
                    access_wrong.append((fid, user, sees, should))
        live = company.live()
        print("checked %d live and %d gone files" % (len(live), len(company.files) - len(live)),
              flush=True)
        problems = {"missing from the index": missing,
                    "stale revisions still searchable": stale,
                    "deleted or trashed but searchable": zombies,
                    "ACLs differ": acl_wrong,
                    "search access differs": access_wrong,
                    "titles differ": wrong_doc}
        report = {k: v for k, v in problems.items() if v}
        self.assertEqual(report, {}, "the index differs from the source:\n" +
                         json.dumps(report, indent=1))
        # Nothing else is in the collection either.
        everything = self.search("acmecorpus", *omni, top_k=100)
        self.assertTrue(all(h.get("externalId") in company.files for h in everything))
        self.assertTrue(all(not company.files[h["externalId"]]["gone"] for h in everything))


if __name__ == "__main__":
    unittest.main()
