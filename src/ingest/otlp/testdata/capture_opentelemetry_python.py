# Regenerates opentelemetry-python-<version>-export.pb (the first captured
# request is kept). Needs: pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http
# Run: python3 capture_opentelemetry_python.py <out-dir>
# Captures the exact OTLP/HTTP metric requests that PyPI
# opentelemetry-exporter-otlp-proto-http sends for a counter, an up/down
# counter, a gauge and a histogram (cumulative temporality, the default).
import http.server, threading, sys, os, json
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation

out = sys.argv[1]
n = [0]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        n[0] += 1
        open(os.path.join(out, 'otlp-python-req%02d.pb' % n[0]), 'wb').write(body)
        open(os.path.join(out, 'otlp-python-req%02d.headers.json' % n[0]), 'w').write(json.dumps({'path': self.path, **dict(self.headers)}))
        self.send_response(200); self.send_header('Content-Type', 'application/x-protobuf'); self.send_header('Content-Length', '0'); self.end_headers()
    def log_message(self, *a): pass
srv = http.server.HTTPServer(('127.0.0.1', 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
exporter = OTLPMetricExporter(endpoint='http://127.0.0.1:%d/v1/metrics' % srv.server_port)
reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60000)
provider = MeterProvider(resource=Resource.create({'service.name': 'checkout', 'service.namespace': 'shop', 'service.instance.id': 'pod-1', 'deployment.environment': 'prod'}), metric_readers=[reader])
meter = provider.get_meter('capture', '1.0')
c = meter.create_counter('orders.placed', unit='{order}', description='Orders placed')
c.add(3, {'payment.method': 'card'}); c.add(2, {'payment.method': 'cash'})
u = meter.create_up_down_counter('queue.size', unit='{item}', description='Queue size')
u.add(5)
meter.create_observable_gauge('cpu.temperature', callbacks=[lambda opts: [Observation(61.5, {'cpu': '0'})]], unit='Cel', description='CPU temperature')
h = meter.create_histogram('http.server.duration', unit='ms', description='Request duration')
for v in (3, 40, 700): h.record(v, {'http.route': '/api/orders'})
reader.force_flush()
provider.shutdown()
srv.shutdown()
