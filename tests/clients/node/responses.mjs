// The AI SDK's default OpenAI provider, `openai(model)`, which speaks the Responses API, against
// the relay's /v1: a tool round trip, streamed or not, printed as one JSON line.
// Usage: RELAY_URL=... RELAY_TOKEN=... node responses.mjs <stream|generate> <model> <prompt>
// tests/clients/test_ai_sdk_responses.py runs it and compares the result with the fake upstream.
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

const [mode, modelId, prompt = 'Hello'] = process.argv.slice(2);
const openai = createOpenAI({ baseURL: `${process.env.RELAY_URL}/v1`, apiKey: process.env.RELAY_TOKEN });

const getWeather = tool({
  description: 'The weather in a city',
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => `Sunny in ${city}`,
});

try {
  const options = {
    model: openai(modelId),
    prompt,
    maxRetries: 0,
    tools: { get_weather: getWeather },
    stopWhen: stepCountIs(2),
  };
  const result = mode === 'stream' ? streamText(options) : await generateText(options);
  const steps = await result.steps;
  console.log(
    JSON.stringify({
      toolCalls: steps[0].toolCalls.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input })),
      toolResults: steps[0].toolResults.map((r) => ({ id: r.toolCallId, output: r.output })),
      finishReasons: steps.map((s) => s.finishReason),
      reasoning: (await result.reasoningText) ?? null,
      text: await result.text,
    }),
  );
} catch (error) {
  console.log(JSON.stringify({ error: String(error?.message ?? error) }));
  process.exit(1);
}
