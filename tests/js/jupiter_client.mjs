// Jupiter's own client (@jup-ag/api) against the engine, for tests/e2e/test_jupiter.py.
//
//   node jupiter_client.mjs quote   '<quoteGet parameters as JSON>'
//   node jupiter_client.mjs execute '<a quote as JSON>'
//
// Environment: ENGINE_URL (http://HOST:PORT) and ENGINE_API_KEY. `quote` asks GET /swap/v1/quote
// through the client's SwapApi (basePath ENGINE_URL/swap/v1) and prints the QuoteResponse as the
// client read it; `execute` reads a quote with the client's QuoteResponseFromJSON, writes Jupiter's
// swap body with its SwapRequestToJSON and POSTs it to /api/orders/execute. Each prints one JSON
// line: {"status": <HTTP status>, "body": <the answer>}.

import { Configuration, QuoteResponseFromJSON, QuoteResponseToJSON, ResponseError, SwapApi, SwapRequestToJSON }
  from "@jup-ag/api";

const engine = process.env.ENGINE_URL;
const headers = { "X-API-Key": process.env.ENGINE_API_KEY };
const USER = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"; // the swap body needs a wallet: any address

async function quote(parameters) {
  const api = new SwapApi(new Configuration({ basePath: `${engine}/swap/v1`, headers }));
  try {
    return { status: 200, body: QuoteResponseToJSON(await api.quoteGet(parameters)) };
  } catch (error) {
    if (error instanceof ResponseError) return { status: error.response.status, body: await error.response.json() };
    throw error;
  }
}

async function execute(quoteJson) {
  const body = SwapRequestToJSON({
    userPublicKey: USER, wrapAndUnwrapSol: true, quoteResponse: QuoteResponseFromJSON(quoteJson),
  });
  const response = await fetch(`${engine}/api/orders/execute`, {
    method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

const [command, argument] = process.argv.slice(2);
const commands = { quote, execute };
if (!(command in commands)) {
  console.error(`usage: node jupiter_client.mjs quote|execute '<json>'`);
  process.exit(2);
}
console.log(JSON.stringify(await commands[command](JSON.parse(argument))));
