#!/usr/bin/python3
"""End to end: the real `tessera serve` process, driven by a gRPC client we
did not write (Debian's python3-grpcio, schemas discovered by reflection).

Checks what a user of the API relies on: health answers SERVING without a
key; reflection lists the tessera.v1 services (with a key); a call without a
key or with a wrong key is UNAUTHENTICATED; a valid key passes; TLS works;
SIGTERM shuts down gracefully; bad command lines fail with clear messages.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reflection_client  # noqa: E402

SERVICES = [
    "tessera.v1.AdminService",
    "tessera.v1.AgentService",
    "tessera.v1.EngineService",
    "tessera.v1.RetrievalService",
    "tessera.v1.SyncService",
]


def tessera_binary():
    srcdir = os.environ.get("TEST_SRCDIR")
    workspace = os.environ.get("TEST_WORKSPACE", "tessera")
    if srcdir:
        return os.path.join(srcdir, workspace, "services/gateway/tessera")
    return os.path.abspath("bazel-bin/services/gateway/tessera")


TMP = os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp()


def run_cli(*args, check=True):
    p = subprocess.run([tessera_binary(), *args], capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError("tessera %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
    return p


def create_key(data_dir, principal, *extra):
    return run_cli("admin", "create-key", "--data_dir=" + data_dir,
                   "--principal=" + principal, *extra).stdout.strip()


class Server:
    """A `tessera serve` child process on a free port."""

    def __init__(self, name, *extra):
        self.data_dir = os.path.join(TMP, name)
        os.makedirs(self.data_dir, exist_ok=True)
        self.port_file = os.path.join(TMP, name + ".port")
        self.log_path = os.path.join(TMP, name + ".log")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.extra = extra

    def start(self):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [tessera_binary(), "serve", "--data_dir=" + self.data_dir, "--listen=127.0.0.1:0",
             "--port_file=" + self.port_file, "--grace_period=5s", *self.extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("tessera serve exited early:\n" + self.read_log())
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    return self
            time.sleep(0.05)
        raise AssertionError("tessera serve did not start:\n" + self.read_log())

    def address(self):
        return "127.0.0.1:%d" % self.port

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class ServeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("main")
        cls.admin_key = create_key(cls.server.data_dir, "root@example.com", "--role=admin")
        cls.ann_key = create_key(cls.server.data_dir, "ann@example.com",
                                 "--groups=finance@example.com,all@example.com")
        cls.server.start()
        cls.client = reflection_client.Client(cls.server.address())

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def assertCode(self, code, fn):
        with self.assertRaises(grpc.RpcError) as cm:
            fn()
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        return cm.exception.details()

    def test_health_serving_without_key(self):
        self.assertEqual(self.client.health(""), "SERVING")
        self.assertEqual(self.client.health("tessera.v1.AdminService"), "SERVING")
        # Services not built yet are registered but honestly not serving.
        self.assertEqual(self.client.health("tessera.v1.SyncService"), "NOT_SERVING")
        # The engine serves (no models configured here: calls answer NOT_FOUND).
        self.assertEqual(self.client.health("tessera.v1.EngineService"), "SERVING")

    def test_reflection_lists_the_tessera_services(self):
        services = self.client.list_services(key=self.ann_key)
        for s in SERVICES:
            self.assertIn(s, services)
        self.assertIn("grpc.reflection.v1alpha.ServerReflection", services)

    def test_reflection_needs_a_key(self):
        self.assertCode(grpc.StatusCode.UNAUTHENTICATED, lambda: self.client.list_services(key=""))

    def test_no_key_is_unauthenticated(self):
        for method in ["tessera.v1.AdminService/WhoAmI", "tessera.v1.EngineService/ListModels",
                       "tessera.v1.RetrievalService/Search", "no.such.Service/Method"]:
            details = self.assertCode(grpc.StatusCode.UNAUTHENTICATED,
                                      lambda: self.client.call_raw(method, key=""))
            self.assertIn("Bearer", details)

    def test_wrong_key_is_unauthenticated(self):
        wrong = self.ann_key[:-4] + ("AAAA" if not self.ann_key.endswith("AAAA") else "BBBB")
        for key in [wrong, "tsk_0000000000000000_x", "not-a-key"]:
            self.assertCode(grpc.StatusCode.UNAUTHENTICATED,
                            lambda: self.client.call_raw("tessera.v1.AdminService/WhoAmI", key=key))
        rpc = self.client.channel.unary_unary("/tessera.v1.AdminService/WhoAmI")
        self.assertCode(grpc.StatusCode.UNAUTHENTICATED,
                        lambda: rpc(b"", timeout=5, metadata=[("authorization", "Basic YTpi")]))

    def test_valid_key_passes_authentication(self):
        who = self.client.call("tessera.v1.AdminService/WhoAmI", "{}", key=self.ann_key)
        self.assertEqual(who["principal"]["user"], "ann@example.com")
        self.assertEqual(who["principal"]["groups"], ["finance@example.com", "all@example.com"])
        self.assertEqual(who["role"], "API_KEY_ROLE_USER")
        # A service not built yet: past authentication, it says so plainly.
        details = self.assertCode(
            grpc.StatusCode.UNIMPLEMENTED,
            lambda: self.client.call_raw("tessera.v1.SyncService/ListConnectors", key=self.ann_key))
        self.assertIn("not built yet", details)
        # The engine answers, with no models when none are configured.
        models = self.client.call("tessera.v1.EngineService/ListModels", "{}", key=self.ann_key)
        self.assertEqual(models.get("models", []), [])

    def test_admin_key_creates_a_working_key(self):
        created = self.client.call(
            "tessera.v1.AdminService/CreateApiKey",
            '{"principal": {"user": "bob@example.com"}, "role": "API_KEY_ROLE_USER"}',
            key=self.admin_key)
        who = self.client.call("tessera.v1.AdminService/WhoAmI", "{}", key=created["secret"])
        self.assertEqual(who["principal"]["user"], "bob@example.com")
        self.assertCode(grpc.StatusCode.PERMISSION_DENIED, lambda: self.client.call(
            "tessera.v1.AdminService/CreateApiKey", '{"principal": {"user": "eve@example.com"}}',
            key=self.ann_key))

    def test_malformed_request_bytes_are_rejected_cleanly(self):
        rpc = self.client.channel.unary_unary("/tessera.v1.AdminService/CreateApiKey")
        # The gateway explains what gRPC reports as a bare INTERNAL.
        details = self.assertCode(
            grpc.StatusCode.INVALID_ARGUMENT,
            lambda: rpc(b"\xff\xff\xff\xff\x0f", timeout=5, metadata=self.client.metadata(self.admin_key)))
        self.assertIn("tessera.v1.CreateApiKeyRequest", details)
        # Invalid UTF-8 in a string field (IngestDocumentsRequest.collection).
        ingest = self.client.channel.unary_unary("/tessera.v1.RetrievalService/IngestDocuments")
        details = self.assertCode(
            grpc.StatusCode.INVALID_ARGUMENT,
            lambda: ingest(b"\x0a\x03\xff\xfeA", timeout=5, metadata=self.client.metadata(self.admin_key)))
        self.assertIn("UTF-8", details)
        # The server is still fine afterwards.
        self.assertEqual(self.client.health(""), "SERVING")


class CommandLineTest(unittest.TestCase):
    def test_missing_data_dir(self):
        p = run_cli("serve", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--data_dir is required", p.stderr)

    def test_unknown_command_and_flag(self):
        p = run_cli("frobnicate", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command", p.stderr)
        p = run_cli("serve", "--no_such_flag=1", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no_such_flag", p.stderr)

    def test_bad_only_and_peers(self):
        d = os.path.join(TMP, "cli")
        p = run_cli("serve", "--data_dir=" + d, "--listen=127.0.0.1:0", "--only=enigne", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown service 'enigne'", p.stderr)
        p = run_cli("serve", "--data_dir=" + d, "--peers=engine", check=False)
        self.assertEqual(p.returncode, 2)

    def test_create_key_needs_principal(self):
        p = run_cli("admin", "create-key", "--data_dir=" + os.path.join(TMP, "cli2"), check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--principal", p.stderr)

    def test_config_file_sets_flags_and_rejects_typos(self):
        cfg = os.path.join(TMP, "bad.json")
        with open(cfg, "w") as f:
            f.write('{"data_dr": "/tmp/x"}')
        p = run_cli("serve", "--config=" + cfg, check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown setting 'data_dr'", p.stderr)
        good = os.path.join(TMP, "good.json")
        with open(good, "w") as f:
            f.write('{"data_dir": "%s", "principal": "cfg@example.com"}' % os.path.join(TMP, "cfg"))
        p = run_cli("admin", "create-key", "--config=" + good)
        self.assertTrue(p.stdout.startswith("tsk_"))
        self.assertIn("cfg@example.com", p.stderr)


class SearchCommandsTest(unittest.TestCase):
    """The collection, ingest, search and index rebuild commands, as a user runs them."""

    def test_ingest_search_and_rebuild(self):
        server = Server("cli_search")
        admin = create_key(server.data_dir, "it@acme.example", "--role=admin")
        ann = create_key(server.data_dir, "ann@acme.example", "--groups=finance@acme.example")
        bob = create_key(server.data_dir, "bob@acme.example", "--groups=engineering@acme.example")
        docs = os.path.join(TMP, "cli_docs")
        os.makedirs(os.path.join(docs, "finance"), exist_ok=True)
        with open(os.path.join(docs, "finance", "budget.md"), "w") as f:
            f.write("# Q3 budget\n\nTravel is cut by ten percent this quarter.\n")
        with open(os.path.join(docs, "finance", "broken.pdf"), "wb") as f:
            f.write(b"not a pdf at all")
        server.start()
        try:
            def cli(key, *args, check=True):
                env = dict(os.environ, TESSERA_KEY=key)
                p = subprocess.run([tessera_binary(), *args, "--server=" + server.address()],
                                   capture_output=True, text=True, timeout=60, env=env)
                if check and p.returncode != 0:
                    raise AssertionError("%s: %s" % (args, p.stderr))
                return p
            cli(admin, "collection", "create", "fin", "--index=HNSW32")
            p = cli(admin, "ingest", docs, "--collection=fin", "--acl=group:finance@acme.example",
                    check=False)
            self.assertEqual(p.returncode, 1)  # one file failed to parse; the rest went in
            self.assertIn("1 new", p.stdout)
            self.assertIn("1 failed", p.stdout)
            self.assertIn("broken.pdf", p.stderr)
            out = cli(ann, "search", "travel budget", "--collection=fin").stdout
            self.assertIn("Q3 budget", out)
            self.assertIn("BM25", out)
            self.assertIn("no results", cli(bob, "search", "travel budget").stdout)
            p = cli(bob, "search", "travel", "--as=ann@acme.example", check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("PERMISSION_DENIED", p.stderr)
            p = cli(ann, "ingest", docs, "--collection=fin", check=False)
            self.assertIn("PERMISSION_DENIED", p.stderr)
            # The rebuild needs the server stopped (the data dir is locked).
            p = run_cli("index", "rebuild", "--data_dir=" + server.data_dir, check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("in use", p.stderr)
        finally:
            server.proc.send_signal(signal.SIGTERM)
            server.proc.wait(timeout=30)
            server.stop()
        p = run_cli("index", "rebuild", "--data_dir=" + server.data_dir)
        self.assertIn("rebuilt fin", p.stdout)
        self.assertIn("live=1", p.stdout)
        # And the rebuilt index serves after a restart.
        server.start()
        try:
            env = dict(os.environ, TESSERA_KEY=ann)
            out = subprocess.run([tessera_binary(), "search", "travel", "--server=" + server.address()],
                                 capture_output=True, text=True, timeout=60, env=env).stdout
            self.assertIn("Q3 budget", out)
        finally:
            server.stop()


class AgentCommandsTest(unittest.TestCase):
    """Agents as a user drives them: import from JSON, list, get, ask as two people."""

    def test_import_and_ask(self):
        server = Server("cli_agents")
        admin = create_key(server.data_dir, "it@acme.example", "--role=admin")
        ann = create_key(server.data_dir, "ann@acme.example", "--groups=finance@acme.example")
        bob = create_key(server.data_dir, "bob@acme.example", "--groups=engineering@acme.example")
        fin = os.path.join(TMP, "agent_docs_fin")
        pub = os.path.join(TMP, "agent_docs_pub")
        os.makedirs(fin, exist_ok=True)
        os.makedirs(pub, exist_ok=True)
        with open(os.path.join(fin, "budget.md"), "w") as f:
            f.write("# Q3 budget\n\nThe Q3 budget is 4.2 million euros; travel is cut by ten percent.\n")
        with open(os.path.join(pub, "holidays.md"), "w") as f:
            f.write("# Holidays\n\nThe office closes for the summer party; the party budget is small.\n")
        example = os.path.join(os.environ.get("TEST_SRCDIR", "."), os.environ.get("TEST_WORKSPACE", "tessera"),
                               "examples/agents/extractive-search.json")
        if not os.path.exists(example):
            example = "examples/agents/extractive-search.json"
        server.start()
        try:
            def cli(key, *args, check=True):
                env = dict(os.environ, TESSERA_KEY=key)
                p = subprocess.run([tessera_binary(), *args, "--server=" + server.address()],
                                   capture_output=True, text=True, timeout=60, env=env)
                if check and p.returncode != 0:
                    raise AssertionError("%s: %s" % (args, p.stderr))
                return p
            cli(admin, "collection", "create", "acme")
            cli(admin, "ingest", fin, "--collection=acme", "--acl=group:finance@acme.example")
            cli(admin, "ingest", pub, "--collection=acme", "--acl=domain:acme.example")
            p = cli(admin, "agent", "import", example, "--agent_id=acme-search")
            self.assertIn("imported acme-search version 1", p.stdout)
            p = cli(admin, "agent", "import", example, "--agent_id=acme-search")
            self.assertIn("version 2", p.stdout)
            self.assertIn("acme-search", cli(ann, "agent", "list").stdout)
            self.assertIn('"model": "extractive"', cli(ann, "agent", "get", "acme-search").stdout)

            ann_answer = cli(ann, "ask", "acme-search", "What is the Q3 budget?")
            self.assertIn("Q3 budget", ann_answer.stdout)
            self.assertIn("Sources:", ann_answer.stdout)
            self.assertIn("[1]", ann_answer.stdout)
            self.assertIn("search_knowledge", ann_answer.stderr)
            bob_answer = cli(bob, "ask", "acme-search", "What is the Q3 budget?")
            self.assertNotIn("4.2 million", bob_answer.stdout)
            self.assertIn("Holidays", bob_answer.stdout)

            # A conversation continues; someone else's cannot be.
            conv = ann_answer.stderr.split("conversation ")[1].split(",")[0]
            cli(ann, "ask", "acme-search", "And travel?", "--conversation=" + conv)
            p = cli(bob, "ask", "acme-search", "hi", "--conversation=" + conv, check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("NOT_FOUND", p.stderr)

            # Mistakes are named.
            broken = os.path.join(TMP, "broken-agent.json")
            with open(broken, "w") as f:
                f.write('{"name": "B", "model": "extractive", "knowledge": {"collections": ["acme"], "topK": 99}}')
            p = cli(admin, "agent", "import", broken, check=False)
            self.assertEqual(p.returncode, 2)
            self.assertIn("knowledge.topK", p.stderr)
            p = cli(ann, "ask", "no-such-agent", "hi", check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("NOT_FOUND", p.stderr)
            p = cli(ann, "ask", "acme-search", "", check=False)
            self.assertEqual(p.returncode, 2)
            p = cli(ann, "ask", "acme-search", "hi", "--approve=maybe", check=False)
            self.assertEqual(p.returncode, 2)
        finally:
            server.stop()


class LifecycleTest(unittest.TestCase):
    def test_sigterm_shuts_down_gracefully(self):
        server = Server("sigterm").start()
        client = reflection_client.Client(server.address())
        self.assertEqual(client.health(""), "SERVING")
        server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(server.proc.wait(timeout=30), 0)
        log = server.read_log()
        self.assertIn("shutting down", log)
        self.assertIn("stopped", log)
        server.stop()

    def test_data_dir_used_twice_is_refused(self):
        a = Server("shared").start()
        try:
            p = run_cli("serve", "--data_dir=" + a.data_dir, "--listen=127.0.0.1:0", check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("in use by another tessera process", p.stderr)
        finally:
            a.stop()

    def test_tls(self):
        cert = os.path.join(TMP, "cert.pem")
        key = os.path.join(TMP, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
        server = Server("tls", "--tls_cert=" + cert, "--tls_key=" + key)
        user_key = create_key(server.data_dir, "tls@example.com")
        server.start()
        try:
            with open(cert, "rb") as f:
                client = reflection_client.Client(server.address(), key=user_key, root_cert=f.read())
            self.assertEqual(client.health(""), "SERVING")
            who = client.call("tessera.v1.AdminService/WhoAmI", "{}")
            self.assertEqual(who["principal"]["user"], "tls@example.com")
            plain = reflection_client.Client(server.address(), key=user_key)
            with self.assertRaises(grpc.RpcError):
                plain.health("")
        finally:
            server.stop()


class EngineCommandsTest(unittest.TestCase):
    """The engine behind the gateway: `tessera serve --engine_config` with a real model, and
    `tessera generate` streaming through the authenticating proxy."""

    @classmethod
    def setUpClass(cls):
        runfiles = os.path.join(os.environ.get("TEST_SRCDIR", "."), os.environ.get("TEST_WORKSPACE", "tessera"))
        cls.model = os.path.join(runfiles, "engine/model/testdata/stories260K.gguf")
        with open(os.path.join(runfiles, "engine/testdata/stories260K.greedy200.txt")) as f:
            cls.golden = f.read()
        config = os.path.join(TMP, "engine.json")
        with open(config, "w") as f:
            f.write('{"device": "cpu", "threads": 2, "models": [{"id": "stories", "path": "%s", "kv_cache_mb": 8}]}'
                    % cls.model)
        cls.server = Server("engine", "--engine_config=" + config)
        cls.key = create_key(cls.server.data_dir, "ann@example.com")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def generate(self, *args, key=None):
        env = dict(os.environ, TESSERA_KEY=key if key is not None else self.key)
        return subprocess.run([tessera_binary(), "generate", *args, "--server=" + self.server.address()],
                              capture_output=True, text=True, timeout=120, env=env)

    def test_generate_streams_through_the_gateway(self):
        p = self.generate("", "--temperature=0", "--max_tokens=200")
        self.assertEqual(p.returncode, 0, p.stderr)
        # The CLI ends the text with a newline, as llama2.c does: the whole reference text.
        self.assertEqual(p.stdout, self.golden)
        self.assertIn("200 generated", p.stderr)

    def test_generate_needs_a_valid_key(self):
        p = self.generate("Once", key="tsk_0000000000000000_nope")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("UNAUTHENTICATED", p.stderr)

    def test_unknown_model_names_the_loaded_ones(self):
        p = self.generate("Once", "--model=gpt-9")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("NOT_FOUND", p.stderr)
        self.assertIn("stories", p.stderr)

    def test_list_models_over_grpc(self):
        client = reflection_client.Client(self.server.address(), key=self.key)
        models = client.call("tessera.v1.EngineService/ListModels", "{}", key=self.key)
        self.assertEqual([m["id"] for m in models["models"]], ["stories"])
        self.assertEqual(models["models"][0]["kind"], "MODEL_KIND_GENERATION")

    def test_local_generate_needs_no_server(self):
        p = subprocess.run([tessera_binary(), "generate", "Once upon a time", "--model_path=" + self.model,
                            "--temperature=0", "--max_tokens=12"], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("Once upon a time, there was a little girl"), p.stdout)

    def test_bad_model_file_is_a_clear_error(self):
        bad = os.path.join(TMP, "bad.gguf")
        with open(bad, "wb") as f:
            f.write(b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)
        p = subprocess.run([tessera_binary(), "generate", "x", "--model_path=" + bad],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("bad.gguf", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
