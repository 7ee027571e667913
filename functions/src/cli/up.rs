//! `lifeboat up`: the local runtime on the embedded defaults.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;

use super::{Local, load_config, schedule_period};
use crate::app::{self, DataDir, Settings};
use crate::bus::BusChoice;
use crate::demo;
use crate::function_defs::TriggerKind;
use crate::hosts::local::{self, Options};
use crate::storage::Storage;

/// Arguments of `lifeboat up`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    local: Local,
    /// Port of the HTTP endpoint (status, Event Grid deliveries).
    #[arg(long, env = "LIFEBOAT_PORT", default_value_t = 7071)]
    port: u16,
    /// Replace a timer function's schedule: NAME=NCRONTAB (six fields), e.g.
    /// schedule_tick="*/10 * * * * *". Repeatable.
    #[arg(long = "timer", value_name = "NAME=SCHEDULE", value_parser = parse_override)]
    timers: Vec<(String, String)>,
    /// Most queue messages handled at once.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Run a demo: a Kubernetes API server in this process (in memory) with a sample
    /// application, protected by a generated policy every 30 s. Not with --config.
    #[arg(long)]
    demo: bool,
}

fn parse_override(s: &str) -> Result<(String, String), String> {
    let (name, schedule) = s.split_once('=').ok_or("expected NAME=SCHEDULE")?;
    Ok((name.trim().to_owned(), schedule.trim().to_owned()))
}

pub(crate) async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let (true, Some(path)) = (args.demo, &args.local.config) {
        anyhow::bail!(
            "--demo brings its own cluster and policy and does not combine with --config ({}; \
             LIFEBOAT_CONFIG sets it too): run one or the other, with different --data directories",
            path.display()
        );
    }
    let mut config = load_config(args.local.config.as_deref())?;
    let data = DataDir::new(&args.local.data);
    let mut timer_overrides: BTreeMap<String, String> = args.timers.into_iter().collect();
    let demo = if args.demo {
        timer_overrides.entry("schedule_tick".into()).or_insert_with(|| demo::TICK.into());
        let demo = demo::start(&data.root).await?;
        config = demo.config.clone();
        Some(demo)
    } else {
        None
    };
    let defs = crate::function_defs::all()?;
    for name in timer_overrides.keys() {
        let is_timer = defs.iter().any(|d| d.name == name && matches!(d.trigger, TriggerKind::Timer { .. }));
        anyhow::ensure!(is_timer, "--timer {name}: no timer function has that name");
    }
    let tick = timer_overrides.get("schedule_tick").cloned().or_else(|| {
        defs.iter().find(|d| d.name == "schedule_tick").and_then(|d| match &d.trigger {
            TriggerKind::Timer { schedule, .. } => Some(schedule.clone()),
            _ => None,
        })
    });
    let tick_period = tick.as_deref().map(schedule_period).transpose()?.unwrap_or(chrono::Duration::minutes(5));
    let (clusters, policies, targets) = (config.clusters.len(), config.policies.len(), config.targets().len());
    let storage = Storage::from_env()?;
    // The local runtime receives from its own queues: sending elsewhere would strand messages.
    anyhow::ensure!(
        BusChoice::from_env()? == BusChoice::Embedded,
        "lifeboat up pumps its local queues, so it sends to them too: unset LIFEBOAT_BUS \
         (LIFEBOAT_BUS=servicebus is for the function app, `lifeboat handler`, and the CLI)"
    );
    let clock = std::sync::Arc::new(lifeboat_shared::ports::SystemClock);
    let mut settings = Settings { tick_period, ..Settings::from_env()? };
    if demo.is_some() {
        // The demo cluster's simulated CSI driver cuts snapshots in a fraction of a second.
        settings.backup.snapshot_poll = std::time::Duration::from_secs(1);
    }
    let (app, _queue) = app::build(&data, config, settings, &storage, &BusChoice::Embedded, clock)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", args.port))?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);
    let shutdown = shutdown_signal();

    match &storage {
        Storage::Embedded => {
            say(&format!("lifeboat up: data in {} (state.sqlite, queues.sqlite, objects/)", data.root.display()));
        }
        Storage::Aws(_) => {
            say(&format!("lifeboat up: data in {} (state.sqlite, queues.sqlite)", data.root.display()));
            say(&format!("lifeboat up: {}", storage.describe()));
        }
        Storage::Azure(_) => {
            say(&format!("lifeboat up: data in {} (queues.sqlite)", data.root.display()));
            say(&format!("lifeboat up: {}", storage.describe()));
        }
    }
    match (&demo, &args.local.config) {
        (Some(demo), _) => demo_lines(demo, &data).iter().for_each(|l| say(l)),
        (None, Some(path)) if policies > 0 => say(&format!(
            "lifeboat up: {clusters} cluster(s), {policies} policy(ies), {targets} target(s) from {}",
            path.display()
        )),
        (None, Some(path)) => nothing_protected(&format!("{} declares no policy", path.display())),
        (None, None) => nothing_protected("no policy is configured (--config PATH or LIFEBOAT_CONFIG)"),
    }
    say(&format!("lifeboat up: listening on http://127.0.0.1:{port} (GET /status)"));
    say("lifeboat up: Ctrl-C stops; messages in flight are kept for the next start");

    let options = Options { port, timer_overrides, workers: args.workers, ..Options::default() };
    local::run(app, listener, options, shutdown).await?;
    if let Some(demo) = demo {
        demo.server.shutdown().await;
    }
    say("lifeboat up: stopped");
    Ok(ExitCode::SUCCESS)
}

/// What `up` says when no policy protects anything.
fn nothing_protected(why: &str) {
    say(&format!("lifeboat up: nothing is protected: {why}"));
    say("lifeboat up: to see backups without a cluster of your own, start the demo: lifeboat up --demo");
}

/// What `up --demo` says about its cluster, for people.
fn demo_lines(demo: &demo::Demo, data: &DataDir) -> Vec<String> {
    let kubeconfig = demo::shell_quote(&demo.kubeconfig.display().to_string());
    let data_arg = demo::shell_quote(&data.root.display().to_string());
    vec![
        format!(
            "lifeboat up: demo cluster `{}` at {}: in memory, in this process; it is gone when lifeboat stops \
             (its backups stay in the data directory)",
            demo::CLUSTER,
            demo.server.url()
        ),
        format!(
            "lifeboat up: sample application in namespace {} ({} objects, {} volume(s) on Azure Disk CSI)",
            demo.sample.namespace,
            demo.sample.objects,
            demo.sample.pvcs.len()
        ),
        format!(
            "lifeboat up: policy `{}` backs up every namespace but {} every 30 s (schedule {}): the first backup commits within a minute",
            demo::POLICY,
            demo::SYSTEM_NAMESPACES.join(", "),
            demo::SCHEDULE
        ),
        format!("lifeboat up: kubeconfig of the demo cluster: {}", demo.kubeconfig.display()),
        format!("lifeboat up: try: kubectl --kubeconfig {kubeconfig} get pods -A"),
        format!("lifeboat up: see the backups: lifeboat backups list --data {data_arg}"),
        format!(
            "lifeboat up: back up now: lifeboat backup now {} --data {data_arg} --config {} --wait",
            demo::POLICY,
            demo::shell_quote(&demo.config_file.display().to_string()),
        ),
    ]
}

/// Prints a line for people; a closed stdout (a supervisor gone) must not stop the runtime.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Ctrl-C or SIGTERM. The handlers are installed when this is called, not when the future is
/// first polled, so a signal sent right after the address is printed is not lost (nor fatal).
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (interrupt, terminate) = (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok());
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {}
                () = wait(terminate) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
