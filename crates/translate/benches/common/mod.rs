//! The typical request and answer the translation benchmarks and the `translate_cost` example
//! share.

/// A typical chat request: a system prompt, a tool call and its result, a follow-up.
pub(crate) const REQUEST: &[u8] = br#"{"model":"gpt-4o","messages":[
{"role":"system","content":"You are a helpful assistant. Answer briefly and cite the tool results you used."},
{"role":"user","content":"What is the weather like in Paris today, and should I take an umbrella?"},
{"role":"assistant","content":null,"tool_calls":[{"id":"call_q2UyBRP7eXNTzAoR8lEhjc9Z","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"unit\":\"celsius\"}"}}]},
{"role":"tool","tool_call_id":"call_q2UyBRP7eXNTzAoR8lEhjc9Z","content":"{\"temp\":18,\"conditions\":\"light rain\",\"precipitation_probability\":0.7}"},
{"role":"user","content":"And tomorrow?"}],
"tools":[{"type":"function","function":{"name":"get_weather","description":"Get the current weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["city"]}}}],
"tool_choice":"auto","max_tokens":512,"temperature":0.3,"stream":false}"#;

/// Its answer from an Anthropic backend: text and a tool call.
pub(crate) const ANTHROPIC_ANSWER: &[u8] = br#"{"id":"msg_01ALwQ87pTS7hH1PjSdC9wJD","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Tomorrow in Paris: 16 C with showers in the afternoon (70% chance). Yes, take an umbrella."},{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather","input":{"city":"Paris","unit":"celsius","day":"tomorrow"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":412,"cache_creation_input_tokens":0,"cache_read_input_tokens":128,"output_tokens":61}}"#;
