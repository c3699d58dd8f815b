// One scenario of the Vercel AI SDK against the relay's /v1, printed as one JSON line.
// Usage: RELAY_URL=... RELAY_TOKEN=... node run.mjs <scenario> <model> [prompt]
// tests/clients/test_vercel_ai.py runs it and compares the result with what the fake upstream got.
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateObject, generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

const [scenario, modelId, prompt = 'Hello'] = process.argv.slice(2);
const provider = createOpenAICompatible({
  name: 'glm',
  baseURL: `${process.env.RELAY_URL}/v1`,
  apiKey: process.env.RELAY_TOKEN,
  includeUsage: true,
});
const model = provider(modelId);
const common = { model, prompt, maxRetries: 0 };
const noThinking = { glm: { thinking: { type: 'disabled' } } };

const getWeather = tool({
  description: 'The weather in a city',
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => `Sunny in ${city}`,
});

async function toolRoundTrip(stream) {
  const options = {
    ...common,
    tools: { get_weather: getWeather },
    stopWhen: stepCountIs(2),
    providerOptions: noThinking,
  };
  const result = stream ? streamText(options) : await generateText(options);
  const steps = await result.steps;
  return {
    toolCalls: steps[0].toolCalls.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input })),
    toolResults: steps[0].toolResults.map((r) => ({ id: r.toolCallId, output: r.output })),
    finishReasons: steps.map((s) => s.finishReason),
    text: await result.text,
  };
}

const scenarios = {
  tool_stream: () => toolRoundTrip(true),
  tool_generate: () => toolRoundTrip(false),
  object: async () => {
    const result = await generateObject({ ...common, schema: z.object({ answer: z.string() }) });
    return { object: result.object };
  },
  stop: async () => {
    const result = await generateText({ ...common, stopSequences: process.argv.slice(5) });
    return { text: result.text, finishReason: result.finishReason };
  },
  thinking_on: async () => {
    const result = streamText(common);
    return { reasoning: (await result.reasoningText) ?? null, text: await result.text };
  },
  thinking_off: async () => {
    const result = streamText({ ...common, providerOptions: noThinking });
    return { reasoning: (await result.reasoningText) ?? null, text: await result.text };
  },
};

try {
  console.log(JSON.stringify(await scenarios[scenario]()));
} catch (error) {
  console.log(JSON.stringify({ error: String(error?.message ?? error) }));
  process.exit(1);
}
