//! `lifeboat lambda`: the AWS Lambda custom runtime, polling `AWS_LAMBDA_RUNTIME_API`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::load_config;
use crate::app::{self, DataDir, Settings};
use crate::bus::BusChoice;
use crate::hosts::lambda::{self, runtime_api::RuntimeApi};
use crate::storage::Storage;

/// Arguments of `lifeboat lambda`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Directory of the embedded state, queues and objects (on Lambda only /tmp is writable,
    /// and it lasts only as long as the execution environment).
    #[arg(long, env = "LIFEBOAT_DATA", default_value = "/tmp/lifeboat")]
    data: PathBuf,
    /// Policy and cluster YAML: a file, or a directory of *.yaml files.
    #[arg(long, env = "LIFEBOAT_CONFIG")]
    config: Option<PathBuf>,
    /// The Runtime API's host and port, set by Lambda.
    #[arg(long, env = "AWS_LAMBDA_RUNTIME_API")]
    runtime_api: Option<String>,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let address = args.runtime_api.context(
        "AWS_LAMBDA_RUNTIME_API is not set: Lambda sets it when it starts the runtime; to run on this \
         machine, use `lifeboat up`",
    )?;
    let api = RuntimeApi::new(&address);
    let app = match build(&args.data, args.config.as_deref()) {
        Ok(app) => app,
        Err(e) => {
            // Lambda shows this as the init failure and does not retry the environment.
            if let Err(report) = api.init_failed("Lifeboat.InitFailed", &format!("{e:#}")).await {
                tracing::error!("reporting the init failure: {report}");
            }
            return Err(e);
        }
    };
    tracing::info!(runtime_api = %address, "lambda runtime started");
    lambda::serve(app, &api).await.context("the Lambda Runtime API went away")?;
    Ok(ExitCode::SUCCESS)
}

fn build(data: &std::path::Path, config: Option<&std::path::Path>) -> anyhow::Result<app::AppState> {
    let config = load_config(config)?;
    let settings = Settings { tick_period: super::handler::tick_period()?, ..Settings::from_env()? };
    let (app, _queue) = app::build(
        &DataDir::new(data),
        config,
        settings,
        &Storage::from_env()?,
        &BusChoice::from_env()?,
        std::sync::Arc::new(lifeboat_shared::ports::SystemClock),
    )
    .context("building the app")?;
    Ok(app)
}
