//! pgk8s: production-grade PostgreSQL on Kubernetes in one command.
//!
//! The binary (`src/main.rs`) parses flags and calls [`run::run`]. Data flows one way:
//! `cli` → `config` → `commands/*` → `release` → (`migration_engine`, `seed`, `kube`, `helm`, `session`, `chart`,
//! `secrets`) → `process`; reports come back up and leave through `output`. See ARCHITECTURE.md.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backup;
pub mod chart;
pub mod cli;
pub mod cnpg;
pub mod cnpg_cluster;
pub mod commands;
pub mod config;
pub mod contents;
pub mod database_url;
pub mod deadline;
pub mod diagnose;
pub mod dump;
pub mod engine;
pub mod error;
pub mod exit_status;
pub mod health;
pub mod helm;
pub mod input;
pub mod interrupt;
pub mod kube;
pub mod major_upgrade;
pub mod manifests;
pub mod migration_engine;
pub mod migration_files;
pub mod names;
pub mod operator;
pub mod output;
pub mod poll;
pub mod preflight;
pub mod process;
pub mod profile;
pub mod progress;
pub mod redact;
pub mod release;
pub mod resize;
pub mod rollout;
pub mod run;
pub mod secrets;
pub mod seed;
pub mod session;
pub mod sql_error;
pub mod sql_lexer;
pub mod transport;
pub mod values_file;
pub mod views;
