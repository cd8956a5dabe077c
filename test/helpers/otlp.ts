/**
 * A local OTLP logs receiver for the tests, speaking the real wire protocols: HTTP with protobuf
 * or JSON bodies (POST /v1/logs) and gRPC (@grpc/grpc-js server, LogsService/Export). Requests are
 * decoded with the OpenTelemetry JS packages' own generated protobuf definitions: the current
 * @opentelemetry/otlp-transformer serializes by hand and ships none, so the last release that
 * shipped the generated logs root (0.214.0) is installed under the alias otlp-transformer-protos,
 * for the tests only.
 */
import grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { join } from 'node:path';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { createRequire } from 'node:module';

/** The two message types used, as protobufjs' static code declares them. */
interface MessageType {
  decode(bytes: Uint8Array): object;
  fromObject(object: unknown): object;
  toObject(message: object, options: Record<string, unknown>): Record<string, unknown>;
  encode(message: object): { finish(): Uint8Array };
  create(properties?: object): object;
}

const root = createRequire(import.meta.url)('otlp-transformer-protos/build/src/generated/root.js') as {
  opentelemetry: { proto: { collector: { logs: { v1: { ExportLogsServiceRequest: MessageType; ExportLogsServiceResponse: MessageType } } } } };
};
const { ExportLogsServiceRequest: Request, ExportLogsServiceResponse: Response } = root.opentelemetry.proto.collector.logs.v1;

/** An AnyValue as plain JavaScript: strings, numbers (int64 as number), booleans, arrays. */
export type Plain = string | number | boolean | Plain[] | { [key: string]: Plain } | null;

/** One received log record, with its resource. */
export interface ReceivedRecord {
  resource: Record<string, Plain>;
  eventName: string;
  /** Nanoseconds since the epoch, as the decimal text of the int64. */
  timeUnixNano: string;
  attributes: Record<string, Plain>;
  /** How the request carrying it came: http/protobuf, http/json or grpc. */
  encoding: string;
  /** The request's headers (HTTP) or metadata (gRPC), names lowercased. */
  headers: Record<string, string>;
}

interface KeyValue {
  key: string;
  value?: AnyValue;
}
interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
  /** A map (execwatch.ancestors' entries). */
  kvlistValue?: { values?: KeyValue[] };
}

function plain(value: AnyValue | undefined): Plain {
  if (value === undefined) return null;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(plain);
  if (value.kvlistValue !== undefined) return mapOf(value.kvlistValue.values);
  throw new Error(`an AnyValue of an unexpected kind: ${JSON.stringify(value)}`);
}

const mapOf = (kvs: KeyValue[] | undefined): Record<string, Plain> => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, plain(kv.value)]));

/** The records of a decoded ExportLogsServiceRequest. */
function recordsOf(message: object, encoding: string, headers: Record<string, string>): ReceivedRecord[] {
  const request = Request.toObject(message, { longs: String, enums: Number, bytes: String, arrays: true }) as {
    resourceLogs: { resource?: { attributes?: KeyValue[] }; scopeLogs: { logRecords: { eventName?: string; timeUnixNano?: string; attributes?: KeyValue[] }[] }[] }[];
  };
  const out: ReceivedRecord[] = [];
  for (const rl of request.resourceLogs) {
    const resource = mapOf(rl.resource?.attributes);
    for (const sl of rl.scopeLogs) {
      for (const r of sl.logRecords) {
        out.push({ resource, eventName: r.eventName ?? '', timeUnixNano: r.timeUnixNano ?? '0', attributes: mapOf(r.attributes), encoding, headers });
      }
    }
  }
  return out;
}

function headersOf(headers: IncomingHttpHeaders): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]));
}

export interface Receiver {
  /** The base URL to give --otlp-endpoint (http://127.0.0.1:PORT). */
  url: string;
  records: ReceivedRecord[];
  /** Requests received (one per exported batch). */
  requests: number;
  close(): Promise<void>;
}

/** A receiver's TLS identity: its key and certificate (PEM). */
export interface TlsIdentity {
  key: Buffer;
  cert: Buffer;
}

/**
 * A test CA and a server certificate it signs for 127.0.0.1 and localhost, made with openssl in
 * `dir`. Returns the CA certificate's path (what OTEL_EXPORTER_OTLP_CERTIFICATE names) and the
 * server's identity.
 */
export function testCa(dir: string): { caPath: string; server: TlsIdentity } {
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=execwatch test CA', '-keyout', f('ca.key'), '-out', f('ca.crt'));
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost',
    '-keyout', f('server.key'), '-out', f('server.csr'));
  writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2',
    '-extfile', f('san.ext'), '-out', f('server.crt'));
  return { caPath: f('ca.crt'), server: { key: readFileSync(f('server.key')), cert: readFileSync(f('server.crt')) } };
}

/** How a receiver behaves beyond the protocol. */
export interface ReceiverOptions {
  /** Answer each request this long after it arrived (its records count as received at once): a slow endpoint. */
  answerAfterMs?: number;
}

/**
 * An OTLP/HTTP receiver on 127.0.0.1 (`port` 0: any free port), protobuf and JSON bodies alike;
 * HTTPS with `tls`.
 */
export async function startHttpReceiver(port = 0, tls?: TlsIdentity, options: ReceiverOptions = {}): Promise<Receiver> {
  const receiver = { url: '', records: [] as ReceivedRecord[], requests: 0, close: async () => {} };
  const answers = new Set<NodeJS.Timeout>();
  const later = (answer: () => void) => {
    if (options.answerAfterMs === undefined) return answer();
    const timer = setTimeout(() => {
      answers.delete(timer);
      answer();
    }, options.answerAfterMs);
    answers.add(timer);
  };
  const handler: RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const json = (req.headers['content-type'] ?? '').startsWith('application/json');
      if (req.method !== 'POST' || req.url !== '/v1/logs') {
        res.writeHead(404).end();
        return;
      }
      receiver.requests += 1;
      const message = json ? Request.fromObject(JSON.parse(body.toString('utf8'))) : Request.decode(body);
      receiver.records.push(...recordsOf(message, json ? 'http/json' : 'http/protobuf', headersOf(req.headers)));
      later(() => {
        if (json) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(Buffer.from(Response.encode(Response.create()).finish()));
      });
    });
  };
  const server: Server = tls ? createTlsServer(tls, handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  receiver.url = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  receiver.close = () => new Promise<void>((resolve) => {
    for (const timer of answers) clearTimeout(timer);
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return receiver;
}

/** An OTLP/gRPC receiver on 127.0.0.1; with TLS when given `tls`. */
export async function startGrpcReceiver(tls?: TlsIdentity): Promise<Receiver> {
  const receiver = { url: '', records: [] as ReceivedRecord[], requests: 0, close: async () => {} };
  const server = new grpc.Server();
  const service: grpc.ServiceDefinition = {
    export: {
      path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
      requestStream: false,
      responseStream: false,
      requestSerialize: (m: object) => Buffer.from(Request.encode(m).finish()),
      requestDeserialize: (b: Buffer) => Request.decode(b),
      responseSerialize: (m: object) => Buffer.from(Response.encode(m).finish()),
      responseDeserialize: (b: Buffer) => Response.decode(b),
    },
  };
  server.addService(service, {
    export(call: grpc.ServerUnaryCall<object, object>, callback: grpc.sendUnaryData<object>) {
      receiver.requests += 1;
      const headers = Object.fromEntries(Object.entries(call.metadata.getMap()).map(([k, v]) => [k, String(v)]));
      receiver.records.push(...recordsOf(call.request, 'grpc', headers));
      callback(null, Response.create());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      '127.0.0.1:0',
      tls ? grpc.ServerCredentials.createSsl(null, [{ private_key: tls.key, cert_chain: tls.cert }], false) : grpc.ServerCredentials.createInsecure(),
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  receiver.url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  receiver.close = () => new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  return receiver;
}

/** A port on 127.0.0.1 where nothing listens (yet). */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
