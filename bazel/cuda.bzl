"""cuda_library: CUDA (.cu) code compiled by the CUDA toolkit's nvcc, for Bazel 4.2.3 offline.

@local_system (bazel/system_config.bzl) looks for $CUDA_HOME/bin/nvcc (default /usr/local/cuda;
BAZEL_NO_CUDA=1 turns it off) and sets CUDA_AVAILABLE. Without CUDA, cuda_library defines
*nothing*, so everything that depends on a CUDA target must be conditional as well:

    load("//bazel:cuda.bzl", "CUDA_AVAILABLE", "cuda_library")

    cuda_library(                      # no-op without CUDA
        name = "kernels",
        srcs = ["kernels.cu", "kernels_impl.cuh"],   # .cu compiled; .cuh/.h private headers
        hdrs = ["kernels.h"],                        # plain C++ API, no CUDA types needed
        deps = ["//engine:tensor"],                  # cc_library deps: headers + link
    )

    [cc_test(                          # defined only when CUDA_AVAILABLE
        name = "kernels_test",
        size = "small",
        srcs = ["kernels_test.cc"],
        tags = ["requires-gpu"],
        deps = [":kernels", "@local_system//:gtest_main"],
    ) for _ in ([1] if CUDA_AVAILABLE else [])]

C++ code that optionally uses a CUDA target selects it the same way, e.g.
`deps = [...] + ([":kernels"] if CUDA_AVAILABLE else [])` plus a `defines` entry, which is where
the project's single CUDA `#ifdef` (the backend registry) gets its macro from.

How it builds: every .cu becomes one nvcc action (-std=c++20 -O3 -Xcompiler -fPIC, SASS for sm_90
(H100/H200) plus compute_90 PTX so later GPUs can JIT it), the objects are archived by `nvcc -lib`,
and a cc_library named `name` wraps the archive with `hdrs`, `deps` and @local_system//:cudart.
A .cu includes project headers relative to the workspace root ("engine/x.h"), generated ones too
(-I. and -I<bin dir>), and the headers, include paths and defines of `deps`. Whole-program (relocatable)
device code is not supported: no -rdc, so kernels must not call __device__ functions of another .cu.
The nvcc action is a small Starlark rule rather than a genrule only so that it can see the headers and
include paths of `deps` (CcInfo), which a genrule cannot; the command is the same.
nvcc picks its host compiler (gcc) from PATH, which --incompatible_strict_action_env fixes to
/bin:/usr/bin:/usr/local/bin; pass `copts = ["-ccbin", "/path/g++"]` to override.
"""

load("@local_system//:defs.bzl", _CUDA_AVAILABLE = "CUDA_AVAILABLE", _NVCC = "NVCC")

# Re-exported for BUILD files: True when @local_system found nvcc (and BAZEL_NO_CUDA is unset).
CUDA_AVAILABLE = _CUDA_AVAILABLE

# nvcc flags for every .cu. sm_90 SASS for H100/H200; compute_90 PTX is the portable fallback
# that the driver JIT-compiles on newer architectures (it does not run on pre-Hopper GPUs).
CUDA_COPTS = [
    "-std=c++20",
    "-O3",
    "-Xcompiler",
    "-fPIC",
    "-gencode",
    "arch=compute_90,code=sm_90",
    "-gencode",
    "arch=compute_90,code=compute_90",
]

_CU_EXTENSIONS = [".cu"]
_HDR_EXTENSIONS = [".cuh", ".h", ".hpp", ".inc"]

def _nvcc_archive_impl(ctx):
    cc_contexts = [d[CcInfo].compilation_context for d in ctx.attr.deps if CcInfo in d]
    headers = depset(
        ctx.files.srcs + ctx.files.hdrs,
        transitive = [c.headers for c in cc_contexts],
    )

    # Include paths, in the order gcc would search them for a cc_library.
    include_flags = []
    seen = {}
    for d in [".", ctx.genfiles_dir.path, ctx.bin_dir.path]:  # the last two are usually equal
        if d not in seen:
            seen[d] = True
            include_flags.append("-I" + d)
    for c in cc_contexts:
        for d in c.quote_includes.to_list() + c.includes.to_list():
            if d not in seen:
                seen[d] = True
                include_flags.append("-I" + d)
    for c in cc_contexts:
        for d in c.system_includes.to_list():
            if d not in seen:
                seen[d] = True
                include_flags += ["-isystem", d]
    define_flags = []
    for c in cc_contexts:
        define_flags += ["-D" + d for d in c.defines.to_list()]

    objects = []
    for src in ctx.files.srcs:
        if not src.path.endswith(".cu"):
            continue
        obj = ctx.actions.declare_file("_objs/%s/%s.o" % (ctx.label.name, src.basename[:-len(".cu")]))
        args = ctx.actions.args()
        args.add_all(CUDA_COPTS)
        args.add_all(include_flags)
        args.add_all(define_flags)
        args.add_all(ctx.attr.copts)
        args.add("-c", src)
        args.add("-o", obj)
        ctx.actions.run(
            executable = ctx.attr.nvcc,
            arguments = [args],
            inputs = depset([src], transitive = [headers]),
            outputs = [obj],
            use_default_shell_env = True,
            mnemonic = "NvccCompile",
            progress_message = "Compiling CUDA %s" % src.short_path,
        )
        objects.append(obj)
    if not objects:
        fail("cuda_library %s: srcs has no .cu file" % ctx.label)

    archive = ctx.actions.declare_file("lib%s.a" % ctx.label.name)
    args = ctx.actions.args()
    args.add("-lib")
    args.add_all(objects)
    args.add("-o", archive)
    ctx.actions.run(
        executable = ctx.attr.nvcc,
        arguments = [args],
        inputs = objects,
        outputs = [archive],
        use_default_shell_env = True,
        mnemonic = "NvccArchive",
        progress_message = "Archiving CUDA %s" % archive.short_path,
    )
    return [DefaultInfo(files = depset([archive]))]

_nvcc_archive = rule(
    implementation = _nvcc_archive_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = _CU_EXTENSIONS + _HDR_EXTENSIONS),
        "hdrs": attr.label_list(allow_files = _HDR_EXTENSIONS),
        "deps": attr.label_list(providers = [CcInfo]),
        "copts": attr.string_list(),
        "nvcc": attr.string(mandatory = True),
    },
    doc = "Compiles .cu files with nvcc and archives the objects (nvcc -lib) into lib<name>.a.",
)

def cuda_library(name, srcs, hdrs = [], deps = [], copts = [], visibility = None, testonly = False):
    """A cc_library `name` made of .cu files compiled by nvcc. Defines nothing without CUDA.

    Args:
      name: name of the resulting cc_library.
      srcs: .cu files (each compiled separately) and private .cuh/.h headers they include.
      hdrs: public headers of the library, for C++ callers (keep CUDA types out of them).
      deps: cc_library targets whose headers the .cu files include and that are linked in.
      copts: extra nvcc flags, appended after the defaults (CUDA_COPTS).
      visibility: visibility of the cc_library.
      testonly: as for any rule.
    """
    if not CUDA_AVAILABLE:
        return
    _nvcc_archive(
        name = name + "_nvcc",
        srcs = srcs,
        hdrs = hdrs,
        deps = deps,
        copts = copts,
        nvcc = _NVCC,
        testonly = testonly,
        visibility = ["//visibility:private"],
    )
    native.cc_library(
        name = name,
        srcs = [":" + name + "_nvcc"],
        linkstatic = True,  # only a prebuilt archive: no .so of its own
        hdrs = hdrs,
        deps = deps + ["@local_system//:cudart"],
        visibility = visibility,
        testonly = testonly,
    )
