/**
 * OTLP logs off the node, with the OpenTelemetry SDK as it is meant to be used: one
 * LoggerProvider, its BatchLogRecordProcessor (bounded queue, batches, one export at a time) and
 * the official OTLP exporter of the protocol asked for, which reads the standard
 * OTEL_EXPORTER_OTLP_* variables itself (headers, certificate, compression, timeout) and retries
 * with backoff. What the SDK does not do is say what it lost, so two things are wrapped around it:
 * the exporter, to count what each batch's result was, and the processor's self-observability
 * meter, the one place it tells that its queue was full and how long the queue is. What neither
 * settles by the end of close()'s drain (queued, or in a request still unanswered) is counted at
 * close, stage export_shutdown: every record given to the SDK is sent or counted once.
 */
import { createNoopMeter, type Attributes, type Meter, type MeterProvider, type ObservableCallback } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPLogExporter as GrpcExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as JsonExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as ProtobufExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_K8S_NODE_NAME, ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { OtlpProtocol } from '../config.js';
import { compileFilter } from '../events/filter.js';
import { hrTimeParser, recordOf } from './attributes.js';
import { NO_EXPORT, otlpConfigured, type EventExporter, type OtlpConfig, type OtlpDeps } from './exporter.js';

/** Records waiting for export at most; beyond it they are dropped and counted (export_overflow). */
export const EXPORT_QUEUE = 4096;
/** Records per OTLP request. */
export const EXPORT_BATCH = 512;
/** Longest a batch waits to fill before it is sent. */
const EXPORT_DELAY_MS = 1000;
/** How long close() lets the queue drain before the process goes on exiting. */
const CLOSE_TIMEOUT_MS = 3000;

type OtlpLogExporter = GrpcExporter | JsonExporter | ProtobufExporter;

/**
 * The exporter of a protocol. `--otlp-endpoint` is a base URL like OTEL_EXPORTER_OTLP_ENDPOINT:
 * over HTTP the logs path is added to it; gRPC takes it as it is. Without it the exporter reads
 * the variables (the logs-specific endpoint first) as the specification says.
 */
function exporterFor(protocol: OtlpProtocol, endpoint: string | null): OtlpLogExporter {
  if (protocol === 'grpc') return new GrpcExporter(endpoint === null ? {} : { url: endpoint });
  const config = endpoint === null ? {} : { url: `${endpoint.replace(/\/+$/, '')}/v1/logs` };
  return protocol === 'http/json' ? new JsonExporter(config) : new ProtobufExporter(config);
}

/**
 * Records given to the SDK that are not settled yet: not sent, refused, or dropped from a full
 * queue. Once closed, whatever is left has been counted as lost and late outcomes are ignored.
 */
interface Ledger {
  outstanding: number;
  closed: boolean;
}

/** Counts each batch's outcome as the exporter reports it, and reports failures. */
class CountingExporter implements LogRecordExporter {
  #failures = 0;

  constructor(
    private readonly inner: OtlpLogExporter,
    private readonly deps: OtlpDeps,
    private readonly ledger: Ledger,
  ) {}

  export(records: ReadableLogRecord[], done: Parameters<LogRecordExporter['export']>[1]): void {
    this.inner.export(records, (result) => {
      const ok = result.code === ExportResultCode.SUCCESS;
      if (this.ledger.closed) {
        // Counted as export_shutdown when close() gave up on it; the process is on its way out.
        done(result);
        return;
      }
      this.ledger.outstanding -= records.length;
      this.deps.metrics.exportBatch(records.length, ok);
      if (!ok) {
        this.#failures += 1;
        if (this.#failures % 100 === 1) {
          this.deps.report(`OTLP export failed (${this.#failures} batches so far, their records counted as lost, stage export_error): ${String(result.error)}`);
        }
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
}

/**
 * The processor's self-observability meter, reduced to the two instruments we read: records it
 * dropped because its queue was full (`otel.sdk.processor.log.processed` with
 * `error.type=queue_full`) and its queue's length (`otel.sdk.processor.log.queue.size`). Every
 * other instrument is the API's no-op.
 */
function processorMeter(onQueueFull: (n: number) => void): { provider: MeterProvider; queueLength: () => number } {
  let observeQueue: ObservableCallback | null = null;
  const noop = createNoopMeter();
  const meter: Meter = Object.assign(Object.create(noop) as Meter, {
    createCounter: (name: string) => ({
      add(value: number, attributes?: Attributes) {
        if (name === 'otel.sdk.processor.log.processed' && attributes?.['error.type'] === 'queue_full') onQueueFull(value);
      },
    }),
    createObservableUpDownCounter: (name: string) => ({
      addCallback(callback: ObservableCallback) {
        if (name === 'otel.sdk.processor.log.queue.size') observeQueue = callback;
      },
      removeCallback() {},
    }),
  });
  return {
    provider: { getMeter: () => meter },
    queueLength() {
      let length = 0;
      void observeQueue?.({ observe: (value: number) => (length = value) });
      return length;
    },
  };
}

/** The OTLP exporter of the configuration, or NO_EXPORT when export is not configured. */
export function createOtlpExporter(config: OtlpConfig, deps: OtlpDeps): EventExporter {
  if (!otlpConfigured(config, deps.env)) return NO_EXPORT;
  const { metrics } = deps;
  const ledger: Ledger = { outstanding: 0, closed: false };
  const queue = processorMeter((n) => {
    ledger.outstanding -= n;
    metrics.lost('export_overflow', n);
  });
  const processor = new BatchLogRecordProcessor({
    exporter: new CountingExporter(exporterFor(config.otlpProtocol, config.otlpEndpoint), deps, ledger),
    maxQueueSize: EXPORT_QUEUE,
    maxExportBatchSize: EXPORT_BATCH,
    scheduledDelayMillis: EXPORT_DELAY_MS,
    selfObsMeterProvider: queue.provider,
  });
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: 'execwatch',
      [ATTR_SERVICE_VERSION]: deps.version,
      [ATTR_K8S_NODE_NAME]: config.nodeName,
      // The node, not the agent pod's own host name (its pod name).
      'host.name': config.nodeName,
      // The SDK's own detection of OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, merged last:
      // what the operator sets there (k8s.cluster.name, deployment.environment.name, another
      // service.name) wins over the agent's defaults.
    }).merge(detectResources({ detectors: [envDetector] })),
    processors: [processor],
  });
  const logger = provider.getLogger('execwatch', deps.version);
  // Validated with the configuration: compiling cannot throw here.
  const wanted = compileFilter(config.otlpFilter ?? {});
  const timestampOf = hrTimeParser();
  const drain = async () => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)));
    await Promise.race([provider.shutdown(), deadline]);
    clearTimeout(timer);
    ledger.closed = true;
    if (ledger.outstanding > 0) {
      metrics.lost('export_shutdown', ledger.outstanding);
      deps.report(`OTLP export: ${ledger.outstanding} records not sent within ${CLOSE_TIMEOUT_MS} ms of shutdown, counted as lost (stage export_shutdown)`);
      ledger.outstanding = 0;
    }
  };
  let closing: Promise<void> | null = null;
  return {
    export(event, record) {
      if (!wanted(record)) return;
      if (closing !== null) {
        // The SDK drops records emitted after its shutdown without a word.
        metrics.lost('export_shutdown');
        return;
      }
      ledger.outstanding += 1;
      const { eventName, attributes } = recordOf(event);
      logger.emit({ eventName, timestamp: timestampOf(event.time), attributes });
    },
    get queueLength() {
      return queue.queueLength();
    },
    close() {
      closing ??= drain();
      return closing;
    },
  };
}
