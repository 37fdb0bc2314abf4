// The wasi:http test component: one component, its behaviour picked by the last segment of
// the path (the site serves it as /c.wasm/<route>).
import { getEnvironment } from "wasi:cli/environment@0.2.10";

addEventListener("fetch", (event) => event.respondWith(route(event.request)));

async function route(req) {
  const url = new URL(req.url);
  switch (url.pathname.split("/").pop()) {
    case "hello":
      return new Response("hello from a component\n", {
        headers: { "content-type": "text/plain" },
      });
    case "request": {
      // What the guest sees of the request, one fact a line.
      const lines = [
        `method=${req.method}`,
        `url=${req.url}`,
        `path=${url.pathname}`,
        `query=${url.search}`,
      ];
      for (const [name, value] of req.headers) lines.push(`header ${name}=${value}`);
      return new Response(lines.join("\n") + "\n");
    }
    case "echo":
      // Streams the request body back as it arrives.
      return new Response(req.body, { headers: { "content-type": "application/octet-stream" } });
    case "count": {
      // Reads the body as a stream and answers with its length.
      let n = 0;
      const reader = req.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        n += value.length;
      }
      return new Response(`${n}\n`);
    }
    case "big": {
      // n bytes of 'x', generated in 64 KiB chunks as the client takes them (a fresh
      // array each: an enqueued one is handed over).
      let left = Number(url.searchParams.get("n") || "0");
      const body = new ReadableStream({
        pull(controller) {
          if (left <= 0) return controller.close();
          const piece = new Uint8Array(Math.min(left, 65536)).fill(120);
          left -= piece.length;
          controller.enqueue(piece);
        },
      });
      return new Response(body);
    }
    case "status": {
      const headers = new Headers();
      headers.append("set-cookie", "a=1");
      headers.append("set-cookie", "b=2");
      headers.append("x-guest", "status");
      return new Response("status\n", {
        status: Number(url.searchParams.get("code") || "200"),
        headers,
      });
    }
    case "env": {
      // The environment the site gives the component (`env`), one KEY=value a line.
      const lines = getEnvironment().map(([k, v]) => `${k}=${v}`);
      return new Response(lines.join("\n") + "\n");
    }
    case "sleep":
      await new Promise((resolve) => setTimeout(resolve, 60000));
      return new Response("woke\n");
    case "spin":
      for (;;) {}
    case "grow": {
      const held = [];
      for (;;) held.push(new Uint8Array(1 << 20).fill(1));
    }
    case "throw":
      throw new Error("the guest failed on purpose");
    case "fetch": {
      // Fetches ?url= (an outgoing wasi:http request) and answers with what came back.
      const res = await fetch(url.searchParams.get("url") || "http://127.0.0.1:9/");
      return new Response(`upstream ${res.status}: ${await res.text()}`);
    }
    default:
      return new Response("no such route\n", { status: 404 });
  }
}
