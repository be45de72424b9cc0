#!/usr/bin/python3
"""A gRPC client for Tessera that knows nothing of its protos in advance.

Built only on Debian's python3-grpcio and python3-protobuf (no code of ours
on the client side, no generated stubs): it speaks the standard gRPC health
protocol, discovers Tessera's API through server reflection, and calls any
unary method with a JSON request, the way grpcurl does.

Used by the end-to-end test and by scripts/demo.sh. Command line:
  reflection_client.py ADDR health [SERVICE]
  reflection_client.py ADDR list                       (needs TESSERA_KEY)
  reflection_client.py ADDR call SERVICE/METHOD JSON   (needs TESSERA_KEY)
"""

import json
import os
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format

try:
    from google.protobuf import message_factory

    def _message_class(desc):
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(desc)
        return message_factory.MessageFactory(desc.file.pool).GetPrototype(desc)
except ImportError:  # pragma: no cover
    raise

_F = descriptor_pb2.FieldDescriptorProto


def _field(msg, name, number, ftype, label=_F.LABEL_OPTIONAL, type_name=None, oneof=None):
    f = msg.field.add(name=name, number=number, type=ftype, label=label)
    if type_name:
        f.type_name = type_name
    if oneof is not None:
        f.oneof_index = oneof
    return f


def _standard_pool():
    """The public health and reflection (v1alpha) schemas, described here
    field by field from the gRPC specifications."""
    pool = descriptor_pool.DescriptorPool()
    health = descriptor_pb2.FileDescriptorProto(
        name="probe/grpc_health_v1.proto", package="grpc.health.v1", syntax="proto3")
    req = health.message_type.add(name="HealthCheckRequest")
    _field(req, "service", 1, _F.TYPE_STRING)
    resp = health.message_type.add(name="HealthCheckResponse")
    _field(resp, "status", 1, _F.TYPE_ENUM,
           type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus")
    enum = resp.enum_type.add(name="ServingStatus")
    for i, n in enumerate(["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"]):
        enum.value.add(name=n, number=i)
    pool.Add(health)

    refl = descriptor_pb2.FileDescriptorProto(
        name="probe/grpc_reflection_v1alpha.proto",
        package="grpc.reflection.v1alpha", syntax="proto3")
    p = ".grpc.reflection.v1alpha."
    rq = refl.message_type.add(name="ServerReflectionRequest")
    rq.oneof_decl.add(name="message_request")
    _field(rq, "host", 1, _F.TYPE_STRING)
    _field(rq, "file_by_filename", 3, _F.TYPE_STRING, oneof=0)
    _field(rq, "file_containing_symbol", 4, _F.TYPE_STRING, oneof=0)
    _field(rq, "list_services", 7, _F.TYPE_STRING, oneof=0)
    fdr = refl.message_type.add(name="FileDescriptorResponse")
    _field(fdr, "file_descriptor_proto", 1, _F.TYPE_BYTES, label=_F.LABEL_REPEATED)
    sr = refl.message_type.add(name="ServiceResponse")
    _field(sr, "name", 1, _F.TYPE_STRING)
    lsr = refl.message_type.add(name="ListServiceResponse")
    _field(lsr, "service", 1, _F.TYPE_MESSAGE, label=_F.LABEL_REPEATED,
           type_name=p + "ServiceResponse")
    er = refl.message_type.add(name="ErrorResponse")
    _field(er, "error_code", 1, _F.TYPE_INT32)
    _field(er, "error_message", 2, _F.TYPE_STRING)
    rs = refl.message_type.add(name="ServerReflectionResponse")
    rs.oneof_decl.add(name="message_response")
    _field(rs, "valid_host", 1, _F.TYPE_STRING)
    _field(rs, "original_request", 2, _F.TYPE_MESSAGE, type_name=p + "ServerReflectionRequest")
    _field(rs, "file_descriptor_response", 4, _F.TYPE_MESSAGE,
           type_name=p + "FileDescriptorResponse", oneof=0)
    _field(rs, "list_services_response", 6, _F.TYPE_MESSAGE,
           type_name=p + "ListServiceResponse", oneof=0)
    _field(rs, "error_response", 7, _F.TYPE_MESSAGE, type_name=p + "ErrorResponse", oneof=0)
    pool.Add(refl)
    return pool


_STD = _standard_pool()


def _cls(pool, name):
    return _message_class(pool.FindMessageTypeByName(name))


class Client:
    def __init__(self, address, key=None, root_cert=None):
        if root_cert is not None:
            creds = grpc.ssl_channel_credentials(root_certificates=root_cert)
            self.channel = grpc.secure_channel(address, creds)
        else:
            self.channel = grpc.insecure_channel(address)
        self.key = key
        self.pool = None

    def metadata(self, key=None):
        k = key if key is not None else self.key
        return [("authorization", "Bearer " + k)] if k else []

    def health(self, service="", timeout=5):
        req_cls = _cls(_STD, "grpc.health.v1.HealthCheckRequest")
        resp_cls = _cls(_STD, "grpc.health.v1.HealthCheckResponse")
        call = self.channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp_cls.FromString)
        resp = call(req_cls(service=service), timeout=timeout)
        return resp_cls.DESCRIPTOR.enum_types_by_name["ServingStatus"].values_by_number[
            resp.status].name

    def _reflect(self, requests, key=None, timeout=10):
        req_cls = _cls(_STD, "grpc.reflection.v1alpha.ServerReflectionRequest")
        resp_cls = _cls(_STD, "grpc.reflection.v1alpha.ServerReflectionResponse")
        call = self.channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp_cls.FromString)
        return list(call(iter([req_cls(**r) for r in requests]), timeout=timeout,
                         metadata=self.metadata(key)))

    def list_services(self, key=None):
        (resp,) = self._reflect([{"list_services": "*"}], key=key)
        return sorted(s.name for s in resp.list_services_response.service)

    def load_schema(self, symbol, key=None):
        """Fetches the files defining `symbol` (and their imports) by reflection."""
        if self.pool is None:
            self.pool = descriptor_pool.DescriptorPool()
            self.loaded = set()
        pending = [("symbol", symbol)]
        files = {}
        while pending:
            kind, what = pending.pop()
            req = {"file_containing_symbol": what} if kind == "symbol" else {"file_by_filename": what}
            (resp,) = self._reflect([req], key=key)
            if resp.HasField("error_response"):
                raise RuntimeError("reflection: %s" % resp.error_response.error_message)
            for raw in resp.file_descriptor_response.file_descriptor_proto:
                fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
                if fd.name in files or fd.name in self.loaded:
                    continue
                files[fd.name] = fd
                for dep in fd.dependency:
                    if dep not in files and dep not in self.loaded:
                        pending.append(("file", dep))
        # Add in dependency order.
        while files:
            progressed = False
            for name, fd in list(files.items()):
                if all(d in self.loaded for d in fd.dependency):
                    self.pool.Add(fd)
                    self.loaded.add(name)
                    del files[name]
                    progressed = True
            if not progressed:
                raise RuntimeError("reflection: unresolvable imports %s" % list(files))

    def call(self, full_method, request_json="{}", key=None, timeout=10):
        """Calls a unary method ("pkg.Service/Method") with a JSON request;
        returns the response as a dict. Raises grpc.RpcError on failure."""
        service, method = full_method.split("/")
        self.load_schema(service, key=key)
        mdesc = self.pool.FindServiceByName(service).methods_by_name[method]
        req_cls = _message_class(mdesc.input_type)
        resp_cls = _message_class(mdesc.output_type)
        req = json_format.Parse(request_json, req_cls())
        rpc = self.channel.unary_unary(
            "/%s/%s" % (service, method),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp_cls.FromString)
        resp = rpc(req, timeout=timeout, metadata=self.metadata(key))
        return json_format.MessageToDict(resp)

    def call_raw(self, full_method, key=None, timeout=10):
        """Calls a method with an empty request without knowing its schema."""
        rpc = self.channel.unary_unary("/" + full_method)
        return rpc(b"", timeout=timeout, metadata=self.metadata(key))


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    addr, cmd = argv[1], argv[2]
    client = Client(addr, key=os.environ.get("TESSERA_KEY"))
    try:
        if cmd == "health":
            print(client.health(argv[3] if len(argv) > 3 else ""))
        elif cmd == "list":
            print("\n".join(client.list_services()))
        elif cmd == "call" and len(argv) >= 4:
            body = argv[4] if len(argv) > 4 else "{}"
            print(json.dumps(client.call(argv[3], body), indent=2))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except grpc.RpcError as e:
        print("%s: %s" % (e.code().name, e.details()), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
