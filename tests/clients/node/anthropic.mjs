// One scenario of the Anthropic TypeScript SDK against the relay's /v1/messages, printed as one
// JSON line. Usage: RELAY_URL=... RELAY_TOKEN=... node anthropic.mjs <scenario> <model> [prompt]
// tests/clients/test_anthropic_node.py runs it and compares the result with the fake upstream.
import Anthropic from '@anthropic-ai/sdk';

const [scenario, model, prompt = 'Hello'] = process.argv.slice(2);
const client = new Anthropic({
  baseURL: process.env.RELAY_URL,
  apiKey: process.env.RELAY_TOKEN,
  maxRetries: 0,
});
const weather = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

const scenarios = {
  stream: async () => {
    const stream = client.messages.stream({
      model,
      max_tokens: 500,
      messages: [{ role: 'user', content: prompt }],
    });
    const events = [];
    for await (const event of stream) events.push(event.type);
    const final = await stream.finalMessage();
    return { events, text: await stream.finalText(), stopReason: final.stop_reason, usage: final.usage };
  },
  tool_round_trip: async () => {
    const messages = [{ role: 'user', content: prompt }];
    const common = { model, max_tokens: 2000, tools: [weather] };
    const first = await client.messages.stream({ ...common, messages }).finalMessage();
    const call = first.content.find((block) => block.type === 'tool_use');
    messages.push({ role: 'assistant', content: first.content });
    messages.push({
      role: 'user',
      content: [{ type: 'tool_result', tool_use_id: call.id, content: `Sunny in ${call.input.city}` }],
    });
    const second = await client.messages.create({ ...common, messages });
    return {
      firstBlocks: first.content.map((block) => block.type),
      call: { id: call.id, name: call.name, input: call.input },
      stopReasons: [first.stop_reason, second.stop_reason],
      text: second.content.filter((b) => b.type === 'text').map((b) => b.text).join(''),
    };
  },
};

try {
  console.log(JSON.stringify(await scenarios[scenario]()));
} catch (error) {
  console.log(JSON.stringify({ error: String(error?.message ?? error) }));
  process.exit(1);
}
