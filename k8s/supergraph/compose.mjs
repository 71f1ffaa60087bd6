// Composes the router's supergraph from the gateway's subgraph SDL, offline.
//
//   cd k8s/supergraph && npm install && npm run compose
//
// or, to compose from what a running gateway actually serves (it may add to
// the contract), save `{ _service { sdl } }` (needs the introspection scope) to
// a file and pass it instead of the contract:
//
//   node compose.mjs served.graphql http://union-gateway:8000/graphql ../base/router/supergraph.graphql
//
// The subgraph URL is the gateway's in-namespace Service: the router and the
// gateway always share a namespace.
import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'graphql';
import { composeServices } from '@theguild/federation-composition';

const [schemaPath, url, out] = process.argv.slice(2);
if (!schemaPath || !url || !out) {
  console.error('usage: node compose.mjs SUBGRAPH.graphql SUBGRAPH_URL OUT.graphql');
  process.exit(2);
}
let sdl = readFileSync(schemaPath, 'utf8');
// The contract file is plain SDL with @key; a served SDL already links federation.
if (!sdl.includes('specs.apollo.dev/federation')) {
  sdl = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])\n' + sdl;
}
const result = composeServices([{ name: 'union_gateway', url, typeDefs: parse(sdl) }]);
if (result.errors && result.errors.length) {
  for (const error of result.errors) console.error(error.message);
  process.exit(1);
}
writeFileSync(out, result.supergraphSdl);
console.log(`wrote ${out}`);
