//! The help texts: `qcc --help` and `qcc <command> --help`.

/// Help for a topic ("" for the overview); `None` for an unknown topic. A command documented in
/// a page of several gets its own paragraphs only (`qcc add --help` is about `add`).
pub fn help(topic: &str) -> Option<std::borrow::Cow<'static, str>> {
    let own = |page: &'static str| std::borrow::Cow::Owned(paragraphs(page, &format!("qcc {topic}")));
    Some(std::borrow::Cow::Borrowed(match topic {
        "" => HELP,
        "init" | "add" | "list" | "use" | "remove" | "uninstall" | "status" | "config set" => {
            return Some(own(HELP_PROFILES))
        }
        "default" | "config list" => return Some(own(HELP_CONFIG)),
        "completions" => HELP_COMPLETIONS,
        "presets" => HELP_PRESETS,
        "dashboard" => HELP_DASHBOARD,
        "statusline" => HELP_STATUSLINE,
        "endpoint" | "endpoint add" | "endpoint list" | "endpoint remove" | "endpoint enable" | "endpoint disable"
        | "endpoint set" => HELP_ENDPOINT,
        "config" => HELP_CONFIG,
        "usage" => HELP_USAGE,
        "key" | "key add" | "key list" | "key set" | "key revoke" => HELP_KEY,
        "sync" | "sync push" | "sync pull" | "sync status" => HELP_SYNC,
        "priority" | "priority set" | "priority list" | "priority switch" | "priority history" | "priority policy" => {
            HELP_PRIORITY
        }
        "logs" => HELP_LOGS,
        "env" => HELP_ENV,
        "doctor" => HELP_DOCTOR,
        "service" | "service install" | "service uninstall" | "service status" => HELP_SERVICE,
        "cluster" | "cluster set" | "cluster show" => HELP_CLUSTER,
        "route" | "route add" | "route list" | "route remove" => HELP_ROUTE,
        "proxy start" => return Some(std::borrow::Cow::Owned(super::proxy_start::help())),
        "proxy" | "proxy status" | "proxy stop" | "proxy logs" | "proxy use" | "proxy unuse" | "proxy reload"
        | "proxy restart" => HELP_PROXY,
        "queue" | "queue status" | "queue clear" | "queue list" | "queue retry" | "queue retry-all" | "health"
        | "health status" | "health test" | "health check" | "health metrics" | "health history" | "health config" => {
            HELP_QUEUE
        }
        _ => return None,
    }))
}

/// The paragraphs of `page` that begin with `prefix` (a line at the margin), each with the
/// indented lines under it; the whole page when none does.
fn paragraphs(page: &str, prefix: &str) -> String {
    let mut out = String::new();
    let mut taking = false;
    for line in page.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            let rest = line.strip_prefix(prefix);
            taking = rest.is_some_and(|r| r.is_empty() || r.starts_with(' ') || r.starts_with(" ("));
        }
        if taking {
            out.push_str(line);
            out.push('\n');
        }
    }
    if out.is_empty() {
        page.to_string()
    } else {
        out
    }
}

const HELP: &str = "\
qcc — Claude Code profiles, and a failover proxy across several API endpoints

USAGE:
    qcc [--port P] [-- ARGS]  launch Claude Code on the default (else last used) profile,
                              through a proxy (started in the background when none runs)
    qcc <COMMAND> [OPTIONS]

PROFILES (the Python qcc's commands, without prompts):
    init                                             create the config file (local storage)
    add NAME --url URL (--key-file P | --key -)      add a single-endpoint profile
    list [--json]                                    profiles, the default marked
    use NAME [--port P] [--direct] [-- ARGS]         start Claude Code on NAME through a proxy
    default NAME                                     set the default profile
    remove NAME --yes [--force]                      delete a profile (--force: and what names it)
    uninstall [--yes]                                remove this machine's qcc config
    status [--json]                                  config, default, whether a proxy runs
    config list [--json] | config set KEY VALUE      profiles with endpoints | settings.KEY

CLUSTERS AND THE PROXY:
    endpoint add CLUSTER --url URL --key-file P      add an endpoint (creates the cluster)
    presets [--json]                                 vendors for endpoint add --preset
    endpoint list CLUSTER [--json]                   a cluster's endpoints (keys masked)
    endpoint remove|enable|disable CLUSTER ID        change one endpoint
    endpoint set CLUSTER ID [--priority N] [...]     change an endpoint's fields
    proxy start [-d] [--cluster NAME] [...]          run the proxy (-d: in the background)
    proxy status [--json]                            the running proxy: requests, health, queue
    dashboard [--open]                               the page's address and how to sign in
    statusline [--install|--uninstall]               a status line for Claude Code (its statusLine)
    proxy stop [--timeout SECS]                      stop the running proxy (SIGTERM, drain)
    proxy reload                                     re-read the served cluster now
    proxy logs [-n N] [-f]                           show (or follow) the proxy log
    proxy use CLUSTER [--host H] [--port P]          point Claude Code's settings.json at qcc
    proxy unuse                                      undo it: settings.json as it was before
    health status [--json]                           endpoint health of the running proxy
    health test [CLUSTER] [ID] [--json]              probe every endpoint now, no proxy needed
    health check | metrics [ID] | history [ID] | config
                                                     probes, latency, events, settings (proxy)
    queue status [--json] | queue list [--json]      the failure queue of the running proxy
    queue clear | queue retry ID | queue retry-all   empty it, or probe queued endpoints now
    cluster set NAME [--retry-on CODES] [--strategy S] [--fallback C2 ...] | cluster show NAME
                                                     a cluster's failover rules and fallback chain
    route add CLUSTER (--model GLOB | --when X) --to C2 | route list CLUSTER | route remove CLUSTER N
                                                     send some requests to another cluster
    priority set PROFILE primary|secondary|fallback | list | switch PROFILE | history | policy
                                                     the Python qcc's profile priorities
    env [--cluster C] [--shell sh|fish]              exports for this shell: eval \"$(qcc env)\"
    service install|uninstall|status                 the proxy as a per-user service
    doctor [--json]                                  why doesn't Claude Code work? and the fix
    usage [--by endpoint|model|key|session|cluster] [--json] [--days N]
                                                     tokens and cost per day
    key add NAME [--daily-tokens N] [--daily-usd X] [--rpm N] [--concurrent N]
        [--expires YYYY-MM-DD] [--cluster C] [--admin]
                                                     a named client key with limits (shown once)
    key list [--json] | key set NAME ... | key revoke NAME
                                                     client keys (names and prefixes only)
    sync push|pull|status [--dir DIR]                the config through a synced folder
    logs [--status 5xx] [--endpoint E] [--key K] [--since 1h] [...]
                                                     the request history (the access log)
    completions bash|zsh|fish                        a shell completion script

OPTIONS:
    -h, --help       help (also `qcc <command> --help`)
    -V, --version    print the version

FILES:
    $QCC_CONFIG (default ~/.fastcc/cache.json)   profiles and clusters
    $QCC_HOME   (default ~/.qcc)                 proxy.pid, proxy.log, failure_endpoints.json, usage.json
";

const HELP_PROFILES: &str = "\
qcc init
    Creates $QCC_CONFIG with local storage when it does not exist; never overwrites.
qcc add NAME --url URL (--key-file PATH | --key - | --key KEY) [--description TEXT]
    A single-endpoint profile, as the Python `qcc add` made it; the first becomes the default.
qcc list [--json]
    --json: {\"config\", \"profiles\": [{\"name\", \"description\", \"default\", \"last_used\",
             \"type\": \"single\"|\"cluster\", \"endpoints\"}]}
qcc use [NAME] [--port P] [--no-launch] [--dry-run] [--direct] [-- ARGS...]
    Without NAME, on a terminal: a numbered list of the profiles to pick from (Enter: the one
    `qcc` alone would use); elsewhere NAME is needed.
    Runs `claude ARGS` through a qcc proxy for NAME: the running one, or one started in the
    background on 127.0.0.1:P (default 7860). Claude Code gets ANTHROPIC_BASE_URL and
    ANTHROPIC_AUTH_TOKEN (the key the proxy wants) in its own environment, and no
    ANTHROPIC_API_KEY (it would ask about a custom key); settings.json is not touched,
    so no other session is left pointing at a proxy that may stop. Everything after `--` goes
    to claude unchanged (-p, -c, --resume ID). Records last_used.
    --no-launch  make sure the proxy runs and print ANTHROPIC_BASE_URL=..., start nothing else
    --dry-run    say what it would do; change and start nothing
    --direct     a single-endpoint profile without a proxy: its URL and key are written into
                 Claude Code's settings.json (the Python qcc's `use`), with no failover
qcc (no command) [--port P] [--dry-run] [-- ARGS...]
    `qcc use` with the default profile, else the most recently used one.
qcc remove NAME --yes [--force]
    Without --yes it asks on a terminal and refuses (exit 1) otherwise. Refused while another
    cluster's route or fallback chain, or priority.json, names NAME (each is listed); --force
    removes those references too.
qcc uninstall [--yes]
    Removes this machine's qcc config: the config file ($QCC_CONFIG, ~/.fastcc/cache.json) and
    $QCC_HOME (~/.qcc: client keys, usage, the request history, the access key). The synced
    folder and the binary stay. Refused while a proxy of this $QCC_HOME runs. Without --yes it
    asks on a terminal (type yes) and refuses otherwise.
qcc status [--json]
    --json: {\"config\", \"user_id\", \"storage_backend\", \"profiles\", \"default_profile\",
             \"proxy\": null | {\"pid\", \"url\", \"cluster\"}}
qcc config set KEY VALUE
    settings.KEY = VALUE (true, false, null and integers are typed; other values are strings).
";

const HELP_COMPLETIONS: &str = "\
qcc completions bash|zsh|fish
    Prints a completion script for every command and flag. Install, for example:
      qcc completions bash > ~/.local/share/bash-completion/completions/qcc
      qcc completions zsh  > ~/.zfunc/_qcc        (with fpath+=~/.zfunc before compinit)
      qcc completions fish > ~/.config/fish/completions/qcc.fish
";

const HELP_PRESETS: &str = "\
qcc presets [--json]
    The vendors `qcc endpoint add CLUSTER --preset NAME --key-file PATH` knows: Anthropic and
    the Anthropic-compatible APIs of DeepSeek, Zhipu GLM (BigModel, Z.ai), Moonshot Kimi,
    MiniMax, Qwen (Model Studio) and OpenRouter, each with its base URL, a model map for Claude
    Code's model names, and where to get a key (--json). $QCC_HOME/presets.json adds presets or
    replaces built-in ones by name: [{\"name\", \"title\", \"base_url\", \"model_map\":
    [[PATTERN, MODEL], ...], \"key_url\", \"prices\": {MODEL: {\"input\", \"output\", ...}}}]; a
    preset's prices go into settings.prices (models not priced yet) when an endpoint is added
    from it. The built-in presets carry no prices: vendors change them (peak hours, promotions).
";

const HELP_ENDPOINT: &str = "\
qcc endpoint — manage the endpoints of a cluster

USAGE:
    qcc endpoint add CLUSTER (--url URL | --preset NAME) (--key-file PATH | --key - | --key KEY | --pass-through)
                             [--priority N] [--weight N] [--timeout SECS] [--max-failures N]
                             [--ca-file PEM] [--name NAME]
        Creates CLUSTER if needed (the first cluster becomes the default, and a new cluster is
        said on stderr: a typo shows); prints the new endpoint id (8 hex characters).
        --preset NAME    a vendor's base URL, model map and name (`qcc presets`); --url,
                         --model-map and --name given too win
        --name NAME      what to call it (unique in the cluster; letters, digits, . _ -);
                         default: the URL's host, made unique
        --model-map PATTERN=MODEL
                         rename the request's model for this endpoint (repeatable; * is a
                         wildcard; first match wins; '' clears): 'claude-*=glm-4.6'
        --probe-model M  what its recovery probe asks for
        --format F       what it speaks: anthropic (the Messages API, default) or openai (Chat
                         Completions at URL/chat/completions, translated both ways; URL is the
                         provider's base, like https://openrouter.ai/api/v1)
        --max-tokens-field max_tokens|max_completion_tokens
                         (openai) the field the limit goes in (default max_tokens)
        --reasoning-effort on|off
                         (openai) send `thinking` as reasoning_effort (default off)
        --rpm N, --tpm N, --concurrent N
                         caps: at most N requests a minute, tokens a minute, requests at
                         once; at a cap it is skipped (never failed) until under ('none' clears)
        --drop-field F, --drop-beta B (repeatable), --adaptive-thinking enabled|drop, --drop-effort,
        --effort-to FIELD
                         request rules for a vendor that refuses what it does not know: a
                         top-level field, an anthropic-beta value left out; thinking
                         {\"type\": \"adaptive\"} sent as enabled (with a budget) or left out;
                         output_config.effort left out, or moved to top-level FIELD. A refusal naming one of these is also
                         learned by the proxy (see docs/vendors.md)
        --no-rules       (set) clear the rules written by hand first
        --forget-rules   (set) forget what the proxy learned from its refusals
        --url            http:// or https:// base URL, may carry a path prefix
        --key-file PATH  read the endpoint's API key from a file (first line)
        --key -          read it from stdin; both keep the key out of `ps` and shell history
        --key KEY        the key itself (visible to other users in `ps` while qcc runs)
        --pass-through   no key: forward the client's own credential (your Claude login first,
                         API keys behind it); never probed with a stored one (docs/proxy.md)
        --priority N     1 = primary, 2 = secondary, ...; lower wins (default 1)
        --weight N       for the weighted strategy (default 100)
        --timeout SECS   time to the response head, and the connect cap (default 30)
        --max-failures N consecutive failures before it is unhealthy (default 3)
        --ca-file PEM    extra trusted CA for a self-hosted relay
    qcc endpoint list CLUSTER [--json]
        --json: [{\"name\", \"id\", \"base_url\", \"api_key\" (masked), \"priority\", \"weight\",
                 \"enabled\", \"max_failures\", \"timeout\", \"model_map\", \"probe_model\",
                 \"format\", \"caps\", \"rules\", \"learned_rules\"}]
        Rules by hand and learned ones are shown under each endpoint.
    qcc endpoint remove CLUSTER ID|NAME
    qcc endpoint enable CLUSTER ID|NAME | qcc endpoint disable CLUSTER ID|NAME
    qcc endpoint set CLUSTER ID|NAME [--priority N] [--weight N] [--timeout SECS] [--max-failures N]
                                [--url URL] [--key-file PATH | --key - | --key KEY] [--name NEW]
                                [--model-map PATTERN=MODEL ...] [--probe-model M]
                                [--format anthropic|openai] [--max-tokens-field F]
                                [--reasoning-effort on|off] [--rpm N] [--tpm N] [--concurrent N]
                                [--drop-field F ...] [--drop-beta B ...] [--adaptive-thinking enabled|drop]
                                [--drop-effort] [--effort-to FIELD] [--no-rules] [--forget-rules]
    A change to the cluster a running proxy serves is applied to it at once (health and queue
    of unchanged endpoints kept), and the command says so.
";

const HELP_USAGE: &str = "\
qcc usage [--by endpoint|model|key|session|cluster] [--json] [--days N]
    Tokens per day as the proxy read them from the responses ($QCC_HOME/usage.json, kept 90
    days; asked of the running proxy when one runs): requests, input, output, cache-creation
    and cache-read tokens and what they cost, for today and the N-1 days before (default 7).
    --by endpoint (default): per endpoint and model. --by model: per model. --by key: per
    client key (`qcc key`; names, never keys), with its limits; requests made with the access
    key count as \"(access key)\". --by session: per Claude Code session (7 days). --by
    cluster: per cluster (by the endpoints each has in the config now; routes and fallbacks
    show where the tokens went).
    --json (--by endpoint): {\"file\": PATH, \"days\": {\"YYYY-MM-DD\": {ENDPOINT_ID: {MODEL:
             {\"requests\", \"input_tokens\", \"output_tokens\", \"cache_creation_input_tokens\",
             \"cache_read_input_tokens\", \"cost_usd\", \"cache_hit_rate\"}}}}, \"totals\": ...}
    --json (--by key): {\"source\", \"keys\": {\"YYYY-MM-DD\": {NAME: {\"requests\", \"tokens\",
             \"input_tokens\", \"output_tokens\", ..., \"cost_usd\", \"last_seen\"}}}}
";

const HELP_LOGS: &str = "\
qcc logs [--endpoint NAME] [--key NAME] [--status S] [--session ID] [--model M] [--cluster C]
         [--since WHEN] [--until WHEN] [-n N] [--json] [--file PATH]
    The request history: the running proxy's JSON access log (--access-log PATH) and its
    rotated files (PATH.1, PATH.2 ...), newest first, N entries (default 20). Each entry says
    what happened to each attempt: the endpoint, how it ended, how long it took.
    --endpoint  the endpoint that answered or any tried (name or id)
    --cluster   the cluster that answered (the entry's \"cluster\"; \"route\" names the route
                that sent it there)
    --status    a status (429), a class (5xx), failed or aborted: the one sent, or one an
                attempt met on the way (5xx finds a request that failed over and then succeeded)
    --since, --until   30m, 2h, 7d ago, or a date (2026-12-01, 2026-12-01T10:00, UTC)
    --file      another log than the running proxy's
    --json: [ENTRY ...], each an access-log line.
";

const HELP_SYNC: &str = "\
qcc sync push [--dir DIR] [--passphrase-file PATH] [--plaintext]
    Writes DIR/fastcc_config.json: this config (and the client keys) in the Python qcc's
    cloud-folder shape. With QCC_SYNC_PASSPHRASE or --passphrase-file, every API key and the
    client keys are sealed (AES-256-GCM, key from PBKDF2-SHA256, 600,000 rounds); the rest stays
    readable JSON, and the whole file is signed (HMAC-SHA256, a key from the same passphrase).
    Without a passphrase, keys are not written in plain text unless --plaintext (what the Python
    qcc reads). Last writer wins; replacing a push not pulled here is said.

qcc sync pull [--dir DIR] [--passphrase-file PATH] [--theirs | --ours] [--plaintext] [--admin-keys]
    Merges DIR/fastcc_config.json into this config by cluster and endpoint id: what changed on
    one side since the last sync is taken from that side; an endpoint changed on both sides is
    reported and the newer kept (--theirs: the folder's, --ours: this machine's). The config is
    kept as cache.json.bak-TIME first, then written atomically; a running proxy re-reads its
    cluster. A folder file that does not parse (mid-sync) is read again, then refused.
    An encrypted file is checked whole before anything is opened: a URL, a client key or any
    value changed without the passphrase is refused. Once this machine has synced an encrypted
    file, a plain or unsigned one is refused too, unless --plaintext. A client key with admin
    rights is taken from the folder only with --admin-keys. A refusal changes nothing.

qcc sync status [--dir DIR] [--json]
    The folder, who pushed last and when, this machine's last push and pull, what differs.

DIR: --dir, else settings.sync_dir (`qcc config set sync_dir DIR`), else the Python qcc's
cloud folder (~/Dropbox/FastCC, ~/OneDrive/FastCC, ... ; iCloud Drive first on macOS).
";

const HELP_PRIORITY: &str = "\
qcc priority set PROFILE primary|secondary|fallback
qcc priority list [--json] | qcc priority switch PROFILE | qcc priority history [-n N] [--json]
qcc priority policy [--auto-failover|--no-auto-failover] [--auto-recovery|--no-auto-recovery]
                    [--failure-threshold N] [--cooldown SECS]
    The Python qcc's profile priorities, in its file ($QCC_HOME/priority.json, its shape; fields
    qcc does not know are kept). A profile has one level; the first primary becomes the active
    profile; `switch` pins another (recorded in the history, type manual). A proxy started
    without --cluster while priorities are set serves the active profile, else the primary.
    The policy is kept as the Python qcc keeps it; within one cluster qcc fails over per
    request (the failure queue), which is what auto-failover meant between profiles.
";

const HELP_KEY: &str = "\
qcc key add NAME [--daily-tokens N] [--daily-usd X] [--rpm N] [--concurrent N]
                 [--expires YYYY-MM-DD] [--cluster C] [--admin]
    Makes a client key (qcc- and 40 random characters) and prints it once, alone on stdout:
    KEY=$(qcc key add bob --daily-usd 5). Only its SHA-256 is kept ($QCC_HOME/keys.json, mode
    0600). Once any key exists, every request to the proxy needs one of them or the access key
    (x-api-key or Authorization: Bearer); the key is never forwarded. A running proxy sees every
    change within a second.
    --daily-tokens N   tokens per UTC day, every kind the upstream reports (input, output,
                       cache writes and reads); --daily-usd X  dollars per UTC day (priced models)
    --rpm N            requests per minute (sliding);  --concurrent N  requests at once
    Over a limit: 429 rate_limit_error with retry-after, nothing sent upstream. Budgets count
    what upstreams reported, reset at 00:00 UTC and survive a restart.
    --expires DATE     the key stops working at 00:00 UTC that day (401)
    --cluster C        only a proxy serving cluster C accepts it (403 elsewhere)
    --admin            may use /_qcc/* (status, dashboard actions) and /metrics

qcc key list [--json]
    Every key: name, prefix, status (active, expired, revoked), created, expiry, cluster,
    limits. Never a key, never its hash.

qcc key set NAME [the flags of add] [--no-admin]
    Changes limits (`none` removes one: --rpm none), expiry or cluster of a key.

qcc key revoke NAME
    Refused from then on (401 \"key 'NAME' was revoked\"); the name stays with its usage.
";

const HELP_CONFIG: &str = "\
qcc config list [--json]
    Lists profiles and clusters of $QCC_CONFIG; the default profile is marked.
    --json: {\"config\": PATH, \"default_profile\": NAME|null, \"profiles\": [{\"name\", \"default\",
             \"endpoints\": [ as in `endpoint list --json` ]}]}

qcc default NAME
    Makes NAME the default profile (settings.default_profile), what `proxy start` serves
    without --cluster.
";

const HELP_PROXY: &str = "\
qcc proxy — run and control the proxy

USAGE:
    qcc proxy start [OPTIONS]          (see `qcc proxy start --help`)
    qcc proxy status [--json]          the running proxy (found via $QCC_HOME/proxy.pid)
    qcc proxy stop [--timeout SECS]    SIGTERM, then wait up to SECS (default 40) for the exit
    qcc proxy reload                   re-read the served cluster now (as SIGHUP; endpoint
                                       edits with qcc do this themselves)
    qcc proxy restart                  stop the running proxy (it drains first) and start it
                                       again in the background, same address, same flags
    qcc proxy logs [-n N] [-f]         last N lines (default 50) of $QCC_HOME/proxy.log;
                                       -f follows until Ctrl-C
    qcc proxy use CLUSTER [--host H] [--port P]
                                       write Claude Code's settings.json ($CLAUDE_CONFIG_DIR or
                                       ~/.claude) to use the proxy, keeping every other key
    qcc proxy unuse                    put settings.json back byte for byte as it was before
                                       qcc first changed it (proxy use, use --direct)
Exit codes: 0 ok, 1 failure, 2 usage or bad file, 3 proxy not running.
";

const HELP_QUEUE: &str = "\
qcc queue / qcc health — the running proxy's failure queue and endpoint health

USAGE:
    qcc queue status [--json]    queued endpoints and counters (total_failed, total_verified,
                                 total_recovered, total_still_failed)
    qcc queue list [--json]      each queued endpoint: id, URL, reason, queued since, last check,
                                 next check
    qcc queue retry ID|NAME      probe a queued endpoint now (restored when it answers 200)
    qcc queue retry-all          probe every queued endpoint now
    qcc queue clear              empty the running proxy's queue (or the file when none runs)
    qcc health status [--json]   per endpoint: status, consecutive failures, requests, failed,
                                 success rate, average response time, in flight
    qcc health test [CLUSTER] [ID] [--json] [--probe-model MODEL]
                                 one real probe request per endpoint, concurrently, each within
                                 its timeout; works without a proxy; exit 1 if any failed
    qcc health check [--json]    the running proxy probes every endpoint now
    qcc health metrics [ID|NAME] [--json]
                                 upstream time to first byte p50/p95/p99 and success rate
    qcc health history [ID|NAME] [-n N] [--json]
                                 the last N (default 20) failures, probes, recoveries, reloads
    qcc health config [--json]   the running proxy's effective intervals and limits
Exit code 3 when no proxy is running (except queue clear and health test).
";

const HELP_DASHBOARD: &str = "\
qcc dashboard [--open]
    Prints the running proxy's page (BASE/_qcc/) and how to sign in: with an access key or
    client keys the page asks for a key once (the access key, or an admin client key); without,
    it works for anyone on this machine. A key is never put in the address. --open starts a
    browser on it ($BROWSER, xdg-open or open) when one can be started. Exit code 3 when no
    proxy runs.
";

const HELP_STATUSLINE: &str = "\
qcc statusline [--install | --uninstall]
    For Claude Code's statusLine setting: reads the JSON Claude Code passes on stdin (its
    session_id) and prints one line about that session from the running proxy: the cluster and
    endpoint that answered it last, the model they were sent, its tokens and cost today, and,
    with a client key that has a daily budget, what is left of it. With no proxy it says so.
    One loopback request; nothing is written.
      --install     write statusLine into Claude Code's settings.json (everything else kept)
      --uninstall   take qcc's statusLine out again
";

const HELP_ENV: &str = "\
qcc env [--cluster C] [--port P] [--shell sh|fish]
    Makes sure a qcc proxy serves cluster C (default: the default cluster), starting one in the
    background on 127.0.0.1:P (default 7860) when none runs, and prints the exports that point
    this shell's Claude Code at it: ANTHROPIC_BASE_URL, plus ANTHROPIC_AUTH_TOKEN set to the
    key the proxy wants (QCC_CLIENT_KEY, the access key), or to the placeholder proxy-managed
    when it wants none (the proxy puts each endpoint's key in its place), after `unset
    ANTHROPIC_API_KEY` (with it Claude Code asks about a custom key). Nothing global is changed:
      eval \"$(qcc env)\"                 (sh, bash, zsh)
      qcc env --shell fish | source
    A proxy running in this $QCC_HOME for another cluster serves C too, at BASE/c/C (one proxy
    for every terminal): that is the URL printed.
";

const HELP_SERVICE: &str = "\
qcc service — the proxy as a per-user service, there whenever Claude Code starts (no root)

USAGE:
    qcc service install [--cluster C] [--port P] [--dir DIR] [--os linux|macos]
        Linux: ~/.config/systemd/user/qcc.socket (listens on 127.0.0.1:P, default 7860) and
        qcc.service (Type=notify; started on the first connection, with your own config and
        $QCC_HOME), then `systemctl --user enable --now qcc.socket`.
        macOS: ~/Library/LaunchAgents/dev.qcc.proxy.plist (RunAtLoad, KeepAlive), loaded with
        `launchctl bootstrap gui/UID`.
        The installed service gets its own access key ($QCC_HOME/access_key, made once, mode
        0600), so other users of the machine cannot use it; qcc env, qcc use and qcc proxy use
        pass it on. A proxy already listening on the port is said, with how to hand over.
        --dir DIR  only write the files there (no systemctl or launchctl, no key)
    qcc service uninstall [--dir DIR] [--os linux|macos]
        Stops and disables it, removes its files.
    qcc service status [--os linux|macos]
        Installed? Active? Exit 1 when not.
For a VPS, the root system unit (scripts/install.sh --systemd) is still there.
";

const HELP_DOCTOR: &str = "\
qcc doctor [--json]
    Why doesn't Claude Code work? One screen: is a proxy running (pid, port, cluster, uptime);
    do Claude Code's settings.json and this shell's ANTHROPIC_BASE_URL point at it, or at
    something dead; can each endpoint be reached and does its key work (one tiny request each,
    as `health test`); is the service installed and active; is `claude` on PATH. Each problem
    comes with the command that fixes it. Exit 0 only when all is well.
    --json: {\"ok\", \"problems\", \"checks\": [{\"check\", \"ok\", \"detail\", \"fix\"}]}
";

const HELP_CLUSTER: &str = "\
qcc cluster set NAME [--retry-on CODES] [--strategy S] [--fallback C2 [--fallback C3]] [--no-fallback]
    Stores the cluster's failover rules in its profile; a running proxy applies them at once.
    --fallback C      when no endpoint of NAME can take a request (all queued, disabled, at a
                      cap or out of headroom) or NAME's endpoints have all been tried before a
                      first byte, the request continues in C (its endpoints, their model maps),
                      then the next --fallback, within the request's 3 tries. The answer's
                      x-qcc-cluster header says which cluster served. --no-fallback clears it.
                      An unknown cluster or a cycle is refused; nothing is written.
    --retry-on CODES  the statuses that fail over to another endpoint (4xx and 5xx; default
                      500,502,503,504,529,429,401,403); any other goes to the client as is and
                      blames nobody
    --strategy S      priority_failover, weighted, round_robin, random, least_connections
                      (`proxy start --strategy` overrides it)
qcc cluster show NAME [--json]
    The cluster's strategy, retry-on statuses, fallback, routes and endpoints.
";

const HELP_ROUTE: &str = "\
qcc route add CLUSTER (--model GLOB | --when CONDITION) --to CLUSTER2
    Requests to a proxy started for CLUSTER that match go to CLUSTER2's endpoints (with its
    own failure queue, probes, affinity, health and fallback). Routes are tried in order; the
    first match wins; anything else stays in CLUSTER. A running proxy applies it at once.
    --model GLOB       the model asked for: claude-*haiku* (`*` any run of characters)
    --when CONDITION   thinking     extended thinking is on
                       image        a message carries an image
                       web-search   the request offers the web search tool
                       tools        the request offers any tool
                       input-tokens>N  the estimated input (the body's bytes / 4) is over N
    An unknown cluster, a route to CLUSTER itself, a bad glob or condition: one line, nothing written.

qcc route list CLUSTER [--json]
    The routes in order, numbered, and the fallback chain.
    --json: {\"cluster\", \"routes\": [{\"n\", \"model\"|\"when\", \"to\"}], \"fallback\"}

qcc route remove CLUSTER N
    Removes route N (as `route list` numbers it).
";
