//! A Messages request (`POST /v1/messages`) as a Chat Completions request: parsed once into
//! typed structs that borrow from the body (tool schemas and tool inputs pass through as raw
//! JSON, never re-parsed), written once. What Chat Completions has no place for is dropped by
//! the rules in docs/translation.md, or refused with the reason (`Err`, a 400 to the client).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::translate::Options;

use super::bad;
use super::types::*;

/// What the translated request is and says.
pub struct Translated {
    pub body: Vec<u8>,
    /// The model the client asked for, and the one sent (after the endpoint's model map).
    pub from: String,
    pub to: String,
    /// The client asked for an event stream.
    pub stream: bool,
}

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    model: Cow<'a, str>,
    max_tokens: Option<u64>,
    #[serde(borrow)]
    system: Option<&'a RawValue>,
    #[serde(borrow)]
    messages: Vec<Message<'a>>,
    #[serde(borrow, default)]
    tools: Vec<Tool<'a>>,
    #[serde(borrow)]
    tool_choice: Option<ToolChoice<'a>>,
    #[serde(borrow, default)]
    stop_sequences: Vec<Cow<'a, str>>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    #[serde(default)]
    stream: bool,
    #[serde(borrow)]
    metadata: Option<Metadata<'a>>,
    thinking: Option<Thinking>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    /// A string or an array of blocks.
    #[serde(borrow)]
    content: &'a RawValue,
}

/// A content block: one struct for every kind (the fields a kind does not have stay `None`), so
/// raw values can borrow (serde's tagged enums buffer, and `RawValue` cannot be buffered).
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    /// A JSON string, kept as its text (see `Text`).
    #[serde(borrow)]
    text: Option<&'a RawValue>,
    /// An object for images and documents; a string (a URL) for a search result.
    #[serde(borrow)]
    source: Option<&'a RawValue>,
    #[serde(borrow)]
    title: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_use_id: Option<Cow<'a, str>>,
    /// A tool result's: a string or blocks.
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(default)]
    is_error: bool,
}

#[derive(Deserialize)]
struct Source<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    media_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
    #[serde(borrow)]
    url: Option<Cow<'a, str>>,
    /// A `content` document's blocks.
    #[serde(borrow)]
    content: Option<&'a RawValue>,
}

impl<'a> Block<'a> {
    /// Its `source` as an object (images, documents).
    fn source(&self) -> Result<Option<Source<'a>>, String> {
        self.source.map(|raw| serde_json::from_str(raw.get()).map_err(bad)).transpose()
    }
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow)]
    input_schema: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ToolChoice<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    disable_parallel_tool_use: bool,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Thinking {
    #[serde(rename = "type")]
    kind: String,
    budget_tokens: Option<u64>,
}

/// The most `stop` strings Chat Completions takes (OpenAI's limit; a request with more is refused
/// rather than stopping on only some of them).
const MAX_STOP: usize = 4;

/// A `system` or message `content`: a string, or blocks.
enum Body<'a> {
    Text(Text<'a>),
    Blocks(Vec<Block<'a>>),
}

fn content<'a>(raw: &'a RawValue) -> Result<Body<'a>, String> {
    if raw.get().starts_with('"') {
        Ok(Body::Text(Text::Raw(raw)))
    } else {
        serde_json::from_str::<Vec<Block<'a>>>(raw.get()).map(Body::Blocks).map_err(bad)
    }
}

/// The text of blocks that carry text (a system prompt's, a tool result's), one per line; an
/// image goes to `images` when there is a place for it (`None`: refused, as in `system`).
fn joined_text<'a>(blocks: &[Block<'a>], mut images: Option<&mut Vec<Part<'a>>>) -> Result<Text<'a>, String> {
    let mut texts: Vec<Text<'a>> = Vec::new();
    for b in blocks {
        match &*b.kind {
            "image" => match images.as_deref_mut() {
                Some(images) => images.push(image(b)?),
                None => return Err(bad("an image in a system prompt or message")),
            },
            _ => texts.extend(block_text(b)?),
        }
    }
    match texts.len() {
        0 => Ok(Text::Made(String::new())),
        1 => Ok(texts.remove(0)),
        _ => Ok(Text::Made(texts.iter().map(Text::string).collect::<Vec<_>>().join("\n"))),
    }
}

/// What a block that carries text says: a `text`, a plain-text or content `document`, a
/// `search_result` (its title, source and texts). A kind without text of its own is skipped
/// when it only means something at Anthropic (`skipped`), and refused by name otherwise.
fn block_text<'a>(b: &Block<'a>) -> Result<Option<Text<'a>>, String> {
    match &*b.kind {
        "text" => b.text.map(Text::raw).transpose(),
        "document" => match b.source()? {
            Some(Source { kind, data: Some(data), .. }) if kind == "text" => Ok(Some(Text::Made(data.into_owned()))),
            Some(Source { kind, content: Some(raw), .. }) if kind == "content" => match content(raw)? {
                Body::Text(t) => Ok(Some(t)),
                Body::Blocks(inner) => joined_text(&inner, None).map(Some),
            },
            _ => Err(bad("documents other than plain text (PDF, say) have no Chat Completions form")),
        },
        "search_result" => {
            let mut text = String::new();
            for line in [b.title.as_deref(), b.source.and_then(|s| s.get().strip_prefix('"')?.strip_suffix('"'))] {
                if let Some(line) = line.filter(|l| !l.is_empty()) {
                    text.push_str(line);
                    text.push('\n');
                }
            }
            if let Some(Body::Blocks(inner)) = b.content.map(content).transpose()? {
                text.push_str(&joined_text(&inner, None)?.string());
            }
            Ok(Some(Text::Made(text)))
        }
        kind if skipped(kind) => Ok(None),
        kind => Err(bad(format_args!("a content block of type {kind:?}"))),
    }
}

/// Blocks that mean something only at Anthropic, left out of a Chat Completions request (and
/// said so in docs/translation.md): earlier turns' thinking, and server tools' calls and results.
fn skipped(kind: &str) -> bool {
    matches!(kind, "thinking" | "redacted_thinking" | "server_tool_use" | "mcp_tool_use")
        || (kind.ends_with("_tool_result") && kind != "tool_result")
}

fn image<'a>(b: &Block<'a>) -> Result<Part<'a>, String> {
    let src = b.source()?.ok_or_else(|| bad("an image block without a source"))?;
    let url = match (&*src.kind, &src.data, &src.url) {
        ("base64", Some(data), _) => {
            let media = src.media_type.as_deref().unwrap_or("image/png");
            Cow::Owned(format!("data:{media};base64,{data}"))
        }
        ("url", _, Some(url)) => url.clone(),
        (kind, _, _) => return Err(bad(format_args!("an image source of type {kind:?}"))),
    };
    Ok(Part::ImageUrl { image_url: ImageUrl { url } })
}

/// Text and image blocks as a message's content: a plain string when it is one text.
fn parts_content<'a>(parts: Vec<Part<'a>>) -> Option<Content<'a>> {
    match parts.len() {
        0 => None,
        1 if matches!(parts[0], Part::Text { .. }) => match parts.into_iter().next() {
            Some(Part::Text { text }) => Some(Content::Text(text)),
            _ => None,
        },
        _ => Some(Content::Parts(parts)),
    }
}

/// Translate `body` for an endpoint with `opts`, its model renamed to `model` when the
/// endpoint's map says so.
pub fn to_chat(body: &[u8], opts: &Options, rename: impl FnOnce(&str) -> Option<String>) -> Result<Translated, String> {
    let req: Request = serde_json::from_slice(body).map_err(bad)?;
    let to = rename(&req.model).unwrap_or_else(|| req.model.to_string());
    let mut messages: Vec<ChatMessage> = Vec::with_capacity(req.messages.len() + 1);

    if let Some(system) = req.system {
        let text = match content(system)? {
            Body::Text(t) => t,
            Body::Blocks(blocks) => joined_text(&blocks, None)?,
        };
        if !text.is_empty() {
            messages.push(ChatMessage {
                role: "system",
                content: Some(Content::Text(text)),
                tool_calls: vec![],
                tool_call_id: None,
            });
        }
    }

    // Tool call ids the last assistant message made and no tool message has answered yet.
    let mut open_calls: Vec<Cow<str>> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        if m.role == "system" {
            // Claude Code sends one (its agent list, after the user's turn): Chat Completions has
            // the same role, in place.
            let text = match content(m.content)? {
                Body::Text(t) => t,
                Body::Blocks(blocks) => joined_text(&blocks, None)?,
            };
            answer_missing(&mut open_calls, &mut messages);
            messages.push(ChatMessage {
                role: "system",
                content: Some(Content::Text(text)),
                tool_calls: vec![],
                tool_call_id: None,
            });
            continue;
        }
        if m.role != "user" && m.role != "assistant" {
            return Err(bad(format_args!("a message of role {:?}", m.role)));
        }
        if m.role == "assistant" && i + 1 == req.messages.len() {
            return Err(bad("a prefilled assistant turn (the last message is the assistant's): Chat Completions would take it as a finished turn"));
        }
        let blocks = match content(m.content)? {
            Body::Text(t) => {
                answer_missing(&mut open_calls, &mut messages);
                let role = if m.role == "assistant" { "assistant" } else { "user" };
                messages.push(ChatMessage {
                    role,
                    content: Some(Content::Text(t)),
                    tool_calls: vec![],
                    tool_call_id: None,
                });
                continue;
            }
            Body::Blocks(b) => b,
        };
        if m.role == "assistant" {
            answer_missing(&mut open_calls, &mut messages);
            let mut text: Vec<Text> = Vec::new();
            let mut calls = Vec::new();
            for b in blocks {
                match &*b.kind {
                    "text" => {
                        if let Some(t) = b.text {
                            text.push(Text::raw(t)?);
                        }
                    }
                    "tool_use" => {
                        let id = b.id.ok_or_else(|| bad("a tool_use block without an id"))?;
                        let name = b.name.ok_or_else(|| bad("a tool_use block without a name"))?;
                        let arguments = b.input.map_or("{}", RawValue::get);
                        open_calls.push(id.clone());
                        calls.push(ToolCall { id, kind: "function", function: FunctionCall { name, arguments } });
                    }
                    // Earlier turns' thinking is not sent back (no Chat Completions field takes
                    // it); server tools' blocks ran at Anthropic and have no meaning here.
                    kind if skipped(kind) => {}
                    kind => return Err(bad(format_args!("a content block of type {kind:?}"))),
                }
            }
            let content = match text.len() {
                0 => None,
                1 => text.pop().map(Content::Text),
                _ => Some(Content::Text(Text::Made(text.iter().map(Text::string).collect::<Vec<_>>().join("\n")))),
            };
            if content.is_some() || !calls.is_empty() {
                messages.push(ChatMessage { role: "assistant", content, tool_calls: calls, tool_call_id: None });
            }
            continue;
        }
        // A user turn: its tool results first, as `tool` messages answering the calls before;
        // then its text and images as one user message.
        let mut parts = Vec::new();
        for b in blocks {
            match &*b.kind {
                "tool_result" => {
                    let id = b.tool_use_id.ok_or_else(|| bad("a tool_result block without a tool_use_id"))?;
                    let mut images = Vec::new();
                    let mut text = match b.content.map(content).transpose()? {
                        None => Text::Made(String::new()),
                        Some(Body::Text(t)) => t,
                        Some(Body::Blocks(inner)) => joined_text(&inner, Some(&mut images))?,
                    };
                    if b.is_error {
                        let s = text.string();
                        if !s.starts_with("Error") {
                            text = Text::Made(format!("Error: {s}"));
                        }
                    }
                    // Images a tool returned go in the user message after (tool messages
                    // carry text only).
                    parts.extend(images);
                    if let Some(i) = open_calls.iter().position(|c| *c == id) {
                        open_calls.remove(i);
                        messages.push(ChatMessage {
                            role: "tool",
                            content: Some(Content::Text(text)),
                            tool_calls: vec![],
                            tool_call_id: Some(id),
                        });
                    } else {
                        // Answers no call the conversation still has (trimmed history): said in
                        // words, since a tool message must answer a call just made.
                        let note = format!("[result of tool call {id}]\n{}", text.string());
                        parts.push(Part::Text { text: Text::Made(note) });
                    }
                }
                "image" => parts.push(image(&b)?),
                _ => {
                    if let Some(text) = block_text(&b)? {
                        parts.push(Part::Text { text });
                    }
                }
            }
        }
        answer_missing(&mut open_calls, &mut messages);
        if let Some(content) = parts_content(parts) {
            messages.push(ChatMessage { role: "user", content: Some(content), tool_calls: vec![], tool_call_id: None });
        }
    }
    answer_missing(&mut open_calls, &mut messages);

    // Tools the client defines; server tools (web search, code execution: a `type` other than
    // "custom" and no schema) run only at Anthropic and are left out.
    let tools: Vec<ChatTool> = req
        .tools
        .iter()
        .filter(|t| t.kind.as_deref().is_none_or(|k| k == "custom"))
        .filter_map(|t| {
            Some(ChatTool {
                kind: "function",
                function: FunctionDef {
                    name: &t.name,
                    description: t.description.as_deref(),
                    parameters: t.input_schema?,
                },
            })
        })
        .collect();
    let (tool_choice, parallel) = match (&req.tool_choice, tools.is_empty()) {
        (_, true) => (None, None),
        (None, false) => (None, None),
        (Some(c), false) => {
            let choice = match &*c.kind {
                "auto" => serde_json::json!("auto"),
                "any" => serde_json::json!("required"),
                "none" => serde_json::json!("none"),
                "tool" => {
                    let name = c.name.as_deref().ok_or_else(|| bad("tool_choice \"tool\" without a name"))?;
                    if tools.iter().any(|t| t.function.name == name) {
                        serde_json::json!({"type": "function", "function": {"name": name}})
                    } else {
                        // A server tool left out above: naming it would be refused; the model
                        // chooses among the tools it has.
                        serde_json::json!("auto")
                    }
                }
                other => return Err(bad(format_args!("tool_choice of type {other:?}"))),
            };
            (Some(choice), c.disable_parallel_tool_use.then_some(false))
        }
    };
    let effort = match &req.thinking {
        Some(t) if opts.reasoning_effort && t.kind == "enabled" => Some(match t.budget_tokens.unwrap_or(0) {
            0..4096 => "low",
            4096..16384 => "medium",
            _ => "high",
        }),
        _ => None,
    };
    if req.stop_sequences.len() > MAX_STOP {
        return Err(bad(format_args!(
            "{} stop_sequences (Chat Completions takes at most {MAX_STOP})",
            req.stop_sequences.len()
        )));
    }
    let (max_tokens, max_completion_tokens) =
        if opts.max_completion_tokens { (None, req.max_tokens) } else { (req.max_tokens, None) };
    let chat = ChatRequest {
        model: &to,
        messages,
        max_tokens,
        max_completion_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: (!req.stop_sequences.is_empty()).then_some(&req.stop_sequences[..]),
        stream: req.stream,
        stream_options: req.stream.then_some(StreamOptions { include_usage: true }),
        tools,
        tool_choice,
        parallel_tool_calls: parallel,
        user: req.metadata.as_ref().and_then(|m| m.user_id.as_deref()),
        reasoning_effort: effort,
    };
    let mut out = Vec::with_capacity(body.len() + body.len() / 8);
    serde_json::to_writer(&mut out, &chat).map_err(bad)?;
    Ok(Translated { body: out, from: req.model.to_string(), to: to.clone(), stream: req.stream })
}

/// Calls of the last assistant message that no tool result answered get an empty answer: a
/// Chat Completions provider refuses a conversation that leaves one open.
fn answer_missing<'a>(open: &mut Vec<Cow<'a, str>>, messages: &mut Vec<ChatMessage<'a>>) {
    for id in open.drain(..) {
        messages.push(ChatMessage {
            role: "tool",
            content: Some(Content::Text(Text::Made("[no result]".into()))),
            tool_calls: vec![],
            tool_call_id: Some(id),
        });
    }
}

#[cfg(test)]
mod tests;
