// A loopback webhook sink for the tests: records every request (method, path, headers,
// body) and answers as told. `node test/sink.mjs [PORT]` prints `{"port": N}` first, then
// each request as one JSON line, and answers 200 `ok` until told otherwise:
//   POST /__answer {"status": N, "body": "...", "headers": {...}, "byMethod": {"HEAD": 405}}
//        sets the answer to the requests after it (byMethod: a status for one method);
//   GET  /__seen   the requests recorded so far, as a JSON array;
//   POST /__reset  forgets them.
// It runs as its own process: the component under test calls wasi:http synchronously.
import http from 'node:http';

const port = Number(process.argv[2] ?? 0);
const seen = [];
let answer = { status: 200, body: 'ok', headers: {}, byMethod: {} };

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    if (req.url === '/__answer') {
      answer = { status: 200, body: '', headers: {}, byMethod: {}, ...JSON.parse(body) };
      res.writeHead(204).end();
      return;
    }
    if (req.url === '/__seen') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(seen));
      return;
    }
    if (req.url === '/__reset') {
      seen.length = 0;
      res.writeHead(204).end();
      return;
    }
    const entry = { method: req.method, path: req.url, headers: req.headers, body };
    seen.push(entry);
    console.log(JSON.stringify(entry));
    const status = answer.byMethod[req.method] ?? answer.status;
    res.writeHead(status, { 'content-type': 'text/plain', ...answer.headers });
    res.end(req.method === 'HEAD' ? undefined : answer.body);
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
process.on('SIGTERM', () => process.exit(0));
