//! Chat Completions on the wire, as qcc writes a request (`request.rs` fills these) and reads
//! an answer's chunks and replies (`stream.rs`, `reply.rs`): typed, borrowing from the bytes,
//! unknown fields skipped.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::store::usage::TokenCount;

// ---- a request, as written ----

#[derive(Serialize)]
pub(super) struct ChatRequest<'a> {
    pub(super) model: &'a str,
    pub(super) messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) stop: Option<&'a [Cow<'a, str>]>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(super) stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) tools: Vec<ChatTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tool_choice: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reasoning_effort: Option<&'static str>,
}

#[derive(Serialize)]
pub(super) struct StreamOptions {
    pub(super) include_usage: bool,
}

#[derive(Serialize)]
pub(super) struct ChatMessage<'a> {
    pub(super) role: &'static str,
    /// `None` is written as `null` (an assistant message with tool calls only).
    pub(super) content: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) tool_calls: Vec<ToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tool_call_id: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum Content<'a> {
    Text(Text<'a>),
    Parts(Vec<Part<'a>>),
}

/// A string of the conversation as it goes out: the JSON text it was in the request (escapes and
/// all), written verbatim — a 200 KB conversation is neither unescaped nor escaped again — or one
/// qcc made (texts joined, a note added).
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum Text<'a> {
    Raw(&'a RawValue),
    Made(String),
}

impl<'a> Text<'a> {
    /// A raw value that must be a JSON string.
    pub(super) fn raw(raw: &'a RawValue) -> Result<Text<'a>, String> {
        if raw.get().starts_with('"') {
            Ok(Text::Raw(raw))
        } else {
            Err(super::bad("a text that is not a string"))
        }
    }

    pub(super) fn string(&self) -> String {
        match self {
            Text::Raw(r) => serde_json::from_str(r.get()).unwrap_or_default(),
            Text::Made(s) => s.clone(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        match self {
            Text::Raw(r) => r.get() == "\"\"",
            Text::Made(s) => s.is_empty(),
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Part<'a> {
    Text { text: Text<'a> },
    ImageUrl { image_url: ImageUrl<'a> },
}

#[derive(Serialize)]
pub(super) struct ImageUrl<'a> {
    pub(super) url: Cow<'a, str>,
}

#[derive(Serialize)]
pub(super) struct ToolCall<'a> {
    pub(super) id: Cow<'a, str>,
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) function: FunctionCall<'a>,
}

#[derive(Serialize)]
pub(super) struct FunctionCall<'a> {
    pub(super) name: Cow<'a, str>,
    /// The tool input's JSON text, as a string.
    pub(super) arguments: &'a str,
}

#[derive(Serialize)]
pub(super) struct ChatTool<'a> {
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) function: FunctionDef<'a>,
}

#[derive(Serialize)]
pub(super) struct FunctionDef<'a> {
    pub(super) name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) description: Option<&'a str>,
    pub(super) parameters: &'a RawValue,
}

// ---- a chunk, as read (typed; unknown fields skipped) ----

#[derive(Deserialize)]
pub(super) struct Chunk<'a> {
    #[serde(borrow)]
    pub(super) id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) choices: Option<Vec<Choice<'a>>>,
    pub(super) usage: Option<ChunkUsage>,
    pub(super) error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub(super) struct Choice<'a> {
    pub(super) index: Option<u64>,
    #[serde(borrow)]
    pub(super) delta: Option<Delta<'a>>,
    #[serde(borrow)]
    pub(super) finish_reason: Option<Cow<'a, str>>,
    /// The stop string that matched, where the provider says (vLLM, SGLang: `stop_reason`).
    #[serde(borrow)]
    pub(super) stop_reason: Option<&'a serde_json::value::RawValue>,
}

/// The stop sequence a choice says matched: its `stop_reason`, when that is a string (vLLM's is
/// a token id when a stop token ended it).
pub(super) fn matched_stop(stop_reason: Option<&serde_json::value::RawValue>) -> Option<String> {
    stop_reason.and_then(|r| serde_json::from_str::<String>(r.get()).ok()).filter(|s| !s.is_empty())
}

/// A chunk's `delta`, or a whole reply's `message` (the same fields, whole).
#[derive(Deserialize)]
pub(super) struct Delta<'a> {
    #[serde(borrow)]
    pub(super) content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) reasoning: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) refusal: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) tool_calls: Option<Vec<ToolDelta<'a>>>,
    /// The legacy single call (before `tool_calls`): one call, no id.
    #[serde(borrow)]
    pub(super) function_call: Option<FunctionDelta<'a>>,
}

impl Delta<'_> {
    /// Its reasoning text (`reasoning_content`, or `reasoning` as some providers call it).
    pub(super) fn reasoning(&self) -> &str {
        self.reasoning_content.as_deref().or(self.reasoning.as_deref()).unwrap_or("")
    }

    /// Its answer text: `content`, then a `refusal`.
    pub(super) fn texts(&self) -> impl Iterator<Item = &str> {
        [self.content.as_deref(), self.refusal.as_deref()].into_iter().flatten().filter(|t| !t.is_empty())
    }
}

/// A tool call, or (streamed) a fragment of one.
#[derive(Deserialize)]
pub(super) struct ToolDelta<'a> {
    pub(super) index: Option<u64>,
    #[serde(borrow)]
    pub(super) id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize)]
pub(super) struct FunctionDelta<'a> {
    #[serde(borrow)]
    pub(super) name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) arguments: Option<Cow<'a, str>>,
}

/// Token counts as Chat Completions reports them (a reply's `usage`, a stream's last chunk).
/// Cache reads are OpenAI's `prompt_tokens_details.cached_tokens`, DeepSeek's
/// `prompt_cache_hit_tokens` or Moonshot's top-level `cached_tokens`. A count that is not a sane
/// whole number is 0 (`TokenCount`), never a failed answer.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ChunkUsage {
    pub(super) prompt_tokens: TokenCount,
    pub(super) completion_tokens: TokenCount,
    pub(super) prompt_tokens_details: Option<PromptDetails>,
    pub(super) prompt_cache_hit_tokens: TokenCount,
    pub(super) cached_tokens: TokenCount,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct PromptDetails {
    pub(super) cached_tokens: TokenCount,
}

impl ChunkUsage {
    /// (input, output, cache read) in the Messages API's sense: its input excludes cache reads.
    pub(super) fn tokens(&self) -> (u64, u64, u64) {
        let details = self.prompt_tokens_details.as_ref().map_or(0, |d| d.cached_tokens.0);
        let cached = details.max(self.prompt_cache_hit_tokens.0).max(self.cached_tokens.0);
        let prompt = self.prompt_tokens.0;
        (prompt.saturating_sub(cached), self.completion_tokens.0, cached.min(prompt))
    }
}
