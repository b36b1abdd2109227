# Regenerates prometheus_client_<version>_requests.json: the exact requests
# (method, path, content type, body) that PyPI prometheus_client sends.
# Run: python3 capture_prometheus_client.py > prometheus_client_<version>_requests.json

import http.server, threading, json, sys, base64
from prometheus_client import CollectorRegistry, Gauge, Counter, Histogram, Summary, push_to_gateway, pushadd_to_gateway, delete_from_gateway

captured = []
class H(http.server.BaseHTTPRequestHandler):
    def _any(self):
        n = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(n) if n else b''
        captured.append({'method': self.command, 'path': self.path,
                         'content_type': self.headers.get('Content-Type'),
                         'body_b64': base64.b64encode(body).decode()})
        self.send_response(200); self.end_headers()
    do_PUT = do_POST = do_DELETE = _any
    def log_message(self, *a): pass

srv = http.server.HTTPServer(('127.0.0.1', 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
gw = '127.0.0.1:%d' % srv.server_port

reg = CollectorRegistry()
g = Gauge('backup_last_success_timestamp_seconds', 'Last time the backup job successfully finished', registry=reg)
g.set(1700000000)
c = Counter('backup_files', 'Files backed up', ['kind'], registry=reg)
c.labels('full').inc(42)
h = Histogram('backup_duration_seconds', 'Backup duration', buckets=(1, 10, 100), registry=reg)
h.observe(7.5); h.observe(250)
s = Summary('backup_chunk_bytes', 'Chunk sizes', registry=reg)
s.observe(4096)
push_to_gateway(gw, job='backup', registry=reg, grouping_key={'instance': 'db1', 'path': '/var/lib/db'})

reg2 = CollectorRegistry()
Gauge('backup_bytes', 'Bytes written', registry=reg2).set(1.5e9)
pushadd_to_gateway(gw, job='backup', registry=reg2, grouping_key={'instance': 'db1', 'path': '/var/lib/db'})
push_to_gateway(gw, job='cron job', registry=reg2, grouping_key={'instance': ''})
delete_from_gateway(gw, job='backup', grouping_key={'instance': 'db1', 'path': '/var/lib/db'})
srv.shutdown()
json.dump(captured, sys.stdout, indent=1)
