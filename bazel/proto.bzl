"""tessera_proto_library: C++ protobuf + gRPC code from .proto files with Debian's protoc
and grpc_cpp_plugin (a matched pair: protoc 3.21, grpc 1.51). Native proto rules would
download protobuf sources, so the codegen is a plain genrule.

Protos live under //proto and import each other as "tessera/v1/x.proto"; C++ includes
the generated headers the same way ("tessera/v1/x.pb.h", "tessera/v1/x.grpc.pb.h")."""

load("@local_system//:defs.bzl", "GRPC_CPP_PLUGIN", "PROTOC")

def tessera_proto_library(name, srcs, deps = [], visibility = None):
    """srcs: .proto files of this package. deps: other tessera_proto_library targets."""
    pkg = native.package_name()  # e.g. proto/tessera/v1
    if not pkg.startswith("proto/"):
        fail("tessera_proto_library must live under //proto")
    outs = []
    for src in srcs:
        base = src[:-len(".proto")]
        outs += [base + ".pb.h", base + ".pb.cc", base + ".grpc.pb.h", base + ".grpc.pb.cc"]
    native.genrule(
        name = name + "_gen",
        srcs = srcs + [d + "_srcs" for d in deps],
        outs = outs,
        cmd = ("{protoc} --proto_path=proto --cpp_out=$(GENDIR)/proto --grpc_out=$(GENDIR)/proto " +
               "--plugin=protoc-gen-grpc={plugin} {files}").format(
            protoc = PROTOC,
            plugin = GRPC_CPP_PLUGIN,
            files = " ".join(["%s/%s" % (pkg, s) for s in srcs]),
        ),
    )
    native.filegroup(name = name + "_srcs", srcs = srcs + [d + "_srcs" for d in deps], visibility = visibility)
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        strip_include_prefix = "/proto",
        deps = deps + ["@local_system//:grpc++", "@local_system//:protobuf"],
        visibility = visibility,
    )
