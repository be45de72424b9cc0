"""Offline Bazel 4.2.3 (Debian bazel-bootstrap) setup using only system packages.

system_config: locates protoc / grpc_cpp_plugin / pkg-config and an optional
CUDA toolkit, and writes a BUILD file with one cc_library per system library
(link flags from pkg-config) plus defs.bzl with tool paths and CUDA_AVAILABLE.
offline_rules_cc / offline_rules_java / offline_coverage_tools: local
stand-ins for repositories that Bazel 4's built-in WORKSPACE suffix would
otherwise download. Nothing here downloads anything."""

def _find_tool(rctx, name, apt_hint):
    p = rctx.which(name)
    if p == None:
        fail("'%s' not found on PATH. On Debian 12: apt-get install -y %s" % (name, apt_hint))
    return str(p)

def _pkg_config(rctx, pkg_config, modules, what):
    res = rctx.execute([pkg_config, what] + modules)
    if res.return_code != 0:
        fail("pkg-config %s %s failed (missing -dev package?):\n%s" %
             (what, " ".join(modules), res.stderr))
    return [f for f in res.stdout.replace("\n", " ").split(" ") if f]

def _system_config_impl(rctx):
    protoc = _find_tool(rctx, "protoc", "protobuf-compiler libprotobuf-dev")
    grpc_plugin = _find_tool(rctx, "grpc_cpp_plugin", "protobuf-compiler-grpc libgrpc++-dev")
    pkg_config = _find_tool(rctx, "pkg-config", "pkg-config")

    build = ['package(default_visibility = ["//visibility:public"])', ""]

    # One cc_library per system library. Headers are under /usr/include, which
    # the auto-configured gcc toolchain treats as a built-in include directory,
    # so only link flags (and -D defines) are needed.
    for name, modules in rctx.attr.pkg_config.items():
        cflags = _pkg_config(rctx, pkg_config, modules, "--cflags")
        libs = _pkg_config(rctx, pkg_config, modules, "--libs")
        defines = [f[2:] for f in cflags if f.startswith("-D")]
        build.append("cc_library(\n    name = %r,\n    defines = %r,\n    linkopts = %r,\n)\n" %
                     (name, defines, libs))
    for name, opts in rctx.attr.linkopts.items():
        build.append("cc_library(\n    name = %r,\n    linkopts = %r,\n)\n" % (name, opts))

    cuda_home = rctx.os.environ.get("CUDA_HOME", "/usr/local/cuda")
    nvcc = rctx.path(cuda_home + "/bin/nvcc")
    cuda_available = nvcc.exists and rctx.os.environ.get("BAZEL_NO_CUDA", "") == ""
    if cuda_available:
        rctx.symlink(cuda_home + "/include", "cuda_include")
        build.append("""cc_library(
    name = "cuda_headers",
    hdrs = glob(["cuda_include/**/*.h", "cuda_include/**/*.hpp"]),
    includes = ["cuda_include"],
)

cc_library(
    name = "cudart",
    linkopts = ["-L{home}/lib64", "-Wl,-rpath,{home}/lib64", "-lcudart"],
    deps = [":cuda_headers"],
)

cc_library(
    name = "cublas",
    linkopts = ["-L{home}/lib64", "-Wl,-rpath,{home}/lib64", "-lcublasLt", "-lcublas"],
    deps = [":cudart"],
)
""".format(home = cuda_home))

    rctx.file("BUILD.bazel", "\n".join(build))
    rctx.file("defs.bzl", """PROTOC = "{protoc}"
GRPC_CPP_PLUGIN = "{grpc}"
CUDA_AVAILABLE = {cuda}
CUDA_HOME = "{home}"
NVCC = "{nvcc}"
""".format(
        protoc = protoc,
        grpc = grpc_plugin,
        cuda = "True" if cuda_available else "False",
        home = cuda_home,
        nvcc = str(nvcc) if cuda_available else "",
    ))

system_config = repository_rule(
    implementation = _system_config_impl,
    attrs = {
        # target name -> pkg-config modules
        "pkg_config": attr.string_list_dict(),
        # target name -> raw linkopts (libraries without a .pc file, e.g. faiss)
        "linkopts": attr.string_list_dict(),
    },
    environ = ["PATH", "PKG_CONFIG_PATH", "CUDA_HOME", "BAZEL_NO_CUDA"],
    local = True,
)

def _offline_coverage_tools_impl(rctx):
    # Stand-in for @remote_coverage_tools, which Bazel 4's built-in WORKSPACE
    # suffix declares as an http_archive (mirror.bazel.build) and which every
    # *_test rule depends on through @bazel_tools//tools/test:coverage_report_generator.
    rctx.file(
        "coverage_stub.sh",
        "#!/bin/sh\necho 'bazel coverage is not available in this offline setup' >&2\nexit 1\n",
        executable = True,
    )
    rctx.file("BUILD.bazel", """package(default_visibility = ["//visibility:public"])
sh_binary(name = "coverage_report_generator", srcs = ["coverage_stub.sh"])
sh_binary(name = "lcov_merger", srcs = ["coverage_stub.sh"])
""")

offline_coverage_tools = repository_rule(implementation = _offline_coverage_tools_impl)

_RULES_CC_DEFS = '''"""Offline stand-in for @rules_cc//cc:defs.bzl: forwards to Bazel's native rules."""
def cc_binary(**attrs):
    native.cc_binary(**attrs)

def cc_import(**attrs):
    native.cc_import(**attrs)

def cc_library(**attrs):
    native.cc_library(**attrs)

def cc_test(**attrs):
    native.cc_test(**attrs)

def cc_proto_library(**attrs):
    native.cc_proto_library(**attrs)

def cc_toolchain(**attrs):
    native.cc_toolchain(**attrs)

def cc_toolchain_suite(**attrs):
    native.cc_toolchain_suite(**attrs)

def fdo_profile(**attrs):
    native.fdo_profile(**attrs)

def fdo_prefetch_hints(**attrs):
    native.fdo_prefetch_hints(**attrs)

def objc_library(**attrs):
    native.objc_library(**attrs)

def objc_import(**attrs):
    native.objc_import(**attrs)
'''

def _offline_rules_cc_impl(rctx):
    # Bazel 4's WORKSPACE suffix declares @rules_cc as an http_archive (GitHub)
    # and @bazel_tools//tools/cpp + @local_config_cc load @rules_cc//cc:defs.bzl.
    # Debian's bazel-rules-cc 0.0.4 needs use_cpp_toolchain (Bazel >= 5) and
    # does not load under Bazel 4.2.3, so provide the tiny subset needed.
    rctx.file("WORKSPACE", "workspace(name = \"rules_cc\")\n")
    rctx.file("BUILD.bazel", "")
    rctx.file("cc/BUILD.bazel", "exports_files([\"defs.bzl\"])\n")
    rctx.file("cc/defs.bzl", _RULES_CC_DEFS)

offline_rules_cc = repository_rule(implementation = _offline_rules_cc_impl)

_RULES_JAVA_DEFS = '''"""Offline stand-in for @rules_java//java:defs.bzl: forwards to native rules."""
def java_binary(**attrs):
    native.java_binary(**attrs)

def java_import(**attrs):
    native.java_import(**attrs)

def java_library(**attrs):
    native.java_library(**attrs)

def java_plugin(**attrs):
    native.java_plugin(**attrs)

def java_test(**attrs):
    native.java_test(**attrs)

def java_runtime(**attrs):
    native.java_runtime(**attrs)

def java_toolchain(**attrs):
    native.java_toolchain(**attrs)

def java_package_configuration(**attrs):
    native.java_package_configuration(**attrs)

def java_proto_library(**attrs):
    native.java_proto_library(**attrs)

def java_lite_proto_library(**attrs):
    native.java_lite_proto_library(**attrs)
'''

def _offline_rules_java_impl(rctx):
    # @bazel_tools//tools/jdk (a registered toolchain package, parsed during C++
    # toolchain resolution too) loads @rules_java//java:defs.bzl, which Bazel 4's
    # WORKSPACE suffix declares as an http_archive (GitHub).
    rctx.file("WORKSPACE", "workspace(name = \"rules_java\")\n")
    rctx.file("BUILD.bazel", "")
    rctx.file("java/BUILD.bazel", "exports_files([\"defs.bzl\"])\n")
    rctx.file("java/defs.bzl", _RULES_JAVA_DEFS)

offline_rules_java = repository_rule(implementation = _offline_rules_java_impl)
