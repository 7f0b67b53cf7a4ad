// A TCP relay for a test deployment on one machine: the namespace hosts reach the machine's PostgreSQL and
// RabbitMQ (which listen on loopback only) at the management bridge's address.
// Usage: node relay.mjs LISTEN_ADDRESS:PORT=TARGET_ADDRESS:PORT ...
import { createConnection, createServer } from 'node:net';

const pairs = process.argv.slice(2);
if (!pairs.length) {
  console.error('usage: node relay.mjs LISTEN_ADDRESS:PORT=TARGET_ADDRESS:PORT ...');
  process.exit(2);
}
const split = (endpoint) => {
  const at = endpoint.lastIndexOf(':');
  return { host: endpoint.slice(0, at), port: Number(endpoint.slice(at + 1)) };
};
for (const pair of pairs) {
  const [listen, target] = pair.split('=').map(split);
  const server = createServer((client) => {
    const upstream = createConnection(target);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  server.on('error', (error) => {
    console.error(`relay ${pair}: ${error.message}`);
    process.exit(1);
  });
  server.listen(listen.port, listen.host, () => console.log(`relay ${pair} listening`));
}
process.on('SIGTERM', () => process.exit(0));
