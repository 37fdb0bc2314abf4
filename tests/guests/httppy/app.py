# The Python wasi:http test component (componentize-py): a guest for the bench row and one
# test, its behaviour picked by the last path segment like the JavaScript one. Built by
# scripts/build-py-component.sh against tests/guests/httpjs/wit.
from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports import environment
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)


def method_name(method) -> str:
    name = type(method).__name__.removeprefix("Method_")
    return method.value if name == "Other" else name.upper()


def route(request: IncomingRequest) -> tuple[int, bytes]:
    target = request.path_with_query() or "/"
    path = target.split("?", 1)[0]
    match path.rsplit("/", 1)[-1]:
        case "hello":
            return 200, b"hello from python\n"
        case "request":
            lines = [f"method={method_name(request.method())}", f"path_with_query={target}"]
            lines += [f"header {k}={v.decode()}" for k, v in request.headers().entries()]
            return 200, ("\n".join(lines) + "\n").encode()
        case "env":
            lines = [f"{k}={v}" for k, v in environment.get_environment()]
            return 200, ("\n".join(lines) + "\n").encode()
    return 404, b"no such route\n"


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        status, text = route(request)
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        response.set_status_code(status)
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with body.write() as stream:
            stream.blocking_write_and_flush(text)
        OutgoingBody.finish(body, None)
