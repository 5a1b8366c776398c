// OpenTelemetry for a Rebound process: load it before anything else with
//   node --import ./examples/otel/tracing.mjs bin/rebound.mjs worker --jobs examples/otel/jobs.ts
// It needs the Node SDK and the OTLP exporter, which Rebound does not depend on:
//   npm install @opentelemetry/sdk-node @opentelemetry/exporter-trace-otlp-http
import { NodeSDK } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';

const sdk = new NodeSDK({
  serviceName: process.env.OTEL_SERVICE_NAME ?? 'rebound',
  // Default endpoint http://localhost:4318/v1/traces (OTEL_EXPORTER_OTLP_ENDPOINT overrides it).
  traceExporter: new OTLPTraceExporter(),
});
sdk.start();

// Flush the last spans on shutdown; the worker stops gracefully on the same signals.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    sdk.shutdown().finally(() => process.kill(process.pid, signal));
  });
}
