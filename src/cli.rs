//! The command-line definition (clap derive) and nothing else.
//!
//! Values are parsed into checked types ([`crate::names`]) here, so a bad namespace or size is a
//! usage error (exit 64) before any process runs. Commands read these structs' fields; they never
//! call clap themselves.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::names::{Identifier, Namespace, ObjectName, Quantity, ReleaseName, parse_duration};

const EXIT_CODES: &str = "\
Exit codes:
  0  success                       5  health check failed
  1  unexpected error              6  insufficient resources (PVC Pending, unschedulable, OOMKilled)
  2  cluster not reachable         7  migration failed
  3  helm/kubectl missing or old   8  database connection failed
  4  deploy or wait timed out      9  refused: needs --yes, or unsafe state
 64  usage error (bad flag or input)";

/// Help heading of the flags that choose the cluster, namespace and release.
pub const CLUSTER: &str = "Cluster selection";
/// Help heading of the flags that choose the database and role.
pub const DATABASE: &str = "Database";
/// Help heading of the output flags.
pub const OUTPUT: &str = "Output";
/// Help heading of the deadline and confirmation flags.
pub const SAFETY: &str = "Safety";

/// Production-grade PostgreSQL on Kubernetes in one command.
///
/// pgk8s deploys the Bitnami PostgreSQL chart with helm, keeps credentials in a Kubernetes
/// Secret, runs schema migrations and seed data through psql inside the pod, verifies health,
/// backs up and restores. stdout carries the result (text, or one JSON document with -o json);
/// logs go to stderr. Passwords never appear on a command line or in output.
#[derive(Debug, Parser)]
#[command(name = "pgk8s", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// Flags every command accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The command line as parsed: the derive definition, with the cluster, database and safety
/// flags hidden from the help of the commands that never read them (`skill`, `completions`).
/// Each of those commands gets a hidden copy of the flag, which clap's propagation of the global
/// one then leaves alone: the flag is still accepted, just not listed.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut command = Cli::command();
    let hidden: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|arg| {
            matches!(
                arg.get_help_heading(),
                Some(CLUSTER) | Some(DATABASE) | Some(SAFETY)
            )
        })
        .map(|arg| arg.clone().hide(true))
        .collect();
    for local in ["skill", "completions"] {
        command = command.mut_subcommand(local, |sub| with_hidden(sub, &hidden));
    }
    command
}

fn with_hidden(mut command: clap::Command, hidden: &[clap::Arg]) -> clap::Command {
    command = command.args(hidden.iter().cloned());
    let children: Vec<String> = command
        .get_subcommands()
        .map(|child| child.get_name().to_string())
        .collect();
    for child in children {
        command = command.mut_subcommand(child, |sub| with_hidden(sub, hidden));
    }
    command
}

/// Flags shared by every command; each also reads a `PGK8S_*` environment variable.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Kubernetes namespace of the database
    #[arg(
        help_heading = CLUSTER,
        short,
        long,
        global = true,
        env = "PGK8S_NAMESPACE",
        default_value = "learnflow"
    )]
    pub namespace: Namespace,

    /// Helm release name
    #[arg(
        help_heading = CLUSTER,
        short,
        long,
        global = true,
        env = "PGK8S_RELEASE",
        default_value = "postgresql"
    )]
    pub release: ReleaseName,

    /// Application database name
    #[arg(
        help_heading = DATABASE,
        short,
        long,
        global = true,
        env = "PGK8S_DATABASE",
        default_value = "learnflow"
    )]
    pub database: Identifier,

    /// Application user (owner of the database; migrations and seeds run as this user)
    #[arg(
        help_heading = DATABASE,
        short,
        long,
        global = true,
        env = "PGK8S_USERNAME",
        default_value = "learnflow"
    )]
    pub username: Identifier,

    /// What runs PostgreSQL: the Bitnami chart, or a CloudNativePG cluster (deploy's default:
    /// bitnami; other commands find the engine of the release by themselves)
    #[arg(help_heading = CLUSTER, long, global = true, env = "PGK8S_ENGINE", value_enum)]
    pub engine: Option<crate::engine::Engine>,

    /// kubeconfig context to use (passed to helm as --kube-context)
    #[arg(help_heading = CLUSTER, long, global = true, env = "PGK8S_CONTEXT")]
    pub context: Option<String>,

    /// Path to the kubeconfig file (kubectl and helm also read KUBECONFIG themselves)
    #[arg(help_heading = CLUSTER, long, global = true, env = "PGK8S_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Connect with a local psql to this URL instead of exec-ing into the pod (e.g. through
    /// `kubectl port-forward`); its password is never shown
    #[arg(
        help_heading = DATABASE,
        long,
        global = true,
        env = "PGK8S_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Output format: a human summary, or exactly one JSON document
    #[arg(help_heading = OUTPUT, short, long, global = true, env = "PGK8S_OUTPUT", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// More logging on stderr: -v shows the (redacted) commands run, -vv their stderr
    #[arg(help_heading = OUTPUT, short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Print nothing on stderr but errors
    #[arg(help_heading = OUTPUT, short, long, global = true, env = "PGK8S_QUIET", value_parser = clap::builder::BoolishValueParser::new())]
    pub quiet: bool,

    /// Deadline for the whole operation (e.g. 90s, 5m)
    #[arg(help_heading = SAFETY, short, long, global = true, env = "PGK8S_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Answer yes to confirmations (needed for destructive actions when stdin is not a terminal)
    #[arg(help_heading = SAFETY, short, long, global = true, env = "PGK8S_YES", value_parser = clap::builder::BoolishValueParser::new())]
    pub yes: bool,

    /// When to color text output
    #[arg(help_heading = OUTPUT, long, global = true, env = "PGK8S_COLOR", value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// Migration versions: what the history table's bigint column holds.
/// A chart version helm pins exactly: `17.1.0`, `v17.1.0`, `17.1.0-rc.1+build` — never empty
/// (helm would take the newest), never a range or anything helm could read as a flag.
fn chart_version(text: &str) -> Result<String, String> {
    let core = text.strip_prefix('v').unwrap_or(text);
    let starts_with_digit = core.starts_with(|c: char| c.is_ascii_digit());
    let allowed = core
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    if starts_with_digit && allowed {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not a chart version; give an exact one such as {}",
            crate::chart::DEFAULT_CHART_VERSION
        ))
    }
}

fn version_parser() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(0..=crate::migration_files::MAX_VERSION)
}

/// `-o` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A short human summary
    Text,
    /// One JSON document
    Json,
}

/// `--color` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Color when stdout is a terminal, NO_COLOR is unset and TERM is not dumb
    Auto,
    /// Always color text output
    Always,
    /// Never color
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy PostgreSQL (Bitnami chart) with credentials in a Secret, then run migrations
    Deploy(DeployArgs),
    /// Uninstall the release; data volumes are kept unless --delete-pvc
    Undeploy(UndeployArgs),
    /// Grow the release's data volumes (every replica's too), without losing a row
    Resize(ResizeArgs),
    /// Move to another PostgreSQL major, image or chart version (backup, new volume, restore, compare)
    Upgrade(UpgradeArgs),
    /// Apply, roll back or inspect schema migrations
    Migrate(MigrateArgs),
    /// Load seed data (the embedded LearnFlow starter set, or your own SQL file)
    Seed(SeedArgs),
    /// Check that the release, pods, volumes and database are healthy
    Verify(VerifyArgs),
    /// Show how to connect (password redacted unless --show-password)
    Info(InfoArgs),
    /// One screen: release, pods, volume, server, database size, connections, migrations
    Status,
    /// Stream a pg_dump of the database to a local file, with a checksum manifest
    Backup(BackupArgs),
    /// Restore a backup made by `pgk8s backup` (replaces data; needs --yes)
    Restore(RestoreArgs),
    /// Open psql in the primary pod (interactive, or piped SQL, or -c)
    Psql(PsqlArgs),
    /// Forward a local port to the primary service and print connection settings
    PortForward(PortForwardArgs),
    /// Show the PostgreSQL container's logs, secrets redacted
    Logs(LogsArgs),
    /// Generate a new password and change it in the database and the Secret together
    RotatePassword(RotatePasswordArgs),
    /// Copy the release's database into a new CloudNativePG cluster and prove the copy (the old
    /// release keeps running)
    Move(MoveArgs),
    /// Planned primary change of a CloudNativePG cluster (the operator promotes the instance)
    Switchover(SwitchoverArgs),
    /// Install or inspect the CloudNativePG operator (for --engine cnpg)
    Operator(OperatorArgs),
    /// Install or show the agent skill (SKILL.md and references)
    Skill(SkillArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

impl Command {
    /// Whether `--timeout` bounds the command. Commands that run in the foreground until the
    /// user stops them (an interactive psql, following logs, a port-forward) have no deadline.
    pub fn has_deadline(&self) -> bool {
        !matches!(
            self,
            Command::Psql(_)
                | Command::PortForward(_)
                | Command::Logs(_)
                | Command::Completions(_)
                | Command::Skill(_)
        )
    }
}

/// `pgk8s deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Persistent volume size for the data directory
    ///
    /// [default: 8Gi; a running release keeps its size]
    #[arg(long)]
    pub storage_size: Option<Quantity>,

    /// Grow the volumes of a running release to --storage-size first (as `pgk8s resize` does)
    #[arg(long)]
    pub resize: bool,

    /// StorageClass for the data volume (default: the cluster's default StorageClass)
    #[arg(long)]
    pub storage_class: Option<ObjectName>,

    /// Resource profile: dev sets small explicit requests/limits; prod needs explicit sizes
    #[arg(long, value_enum, default_value_t = Profile::Dev)]
    pub profile: Profile,

    /// Number of read replicas (streaming replication; needs --profile prod)
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = clap::value_parser!(u8).range(0..=10))]
    pub replicas: u8,

    /// CPU request of each PostgreSQL container (e.g. 500m)
    #[arg(long)]
    pub cpu_request: Option<Quantity>,

    /// Memory request of each PostgreSQL container (e.g. 1Gi)
    #[arg(long)]
    pub memory_request: Option<Quantity>,

    /// CPU limit (unset by default: CPU limits throttle PostgreSQL)
    #[arg(long)]
    pub cpu_limit: Option<Quantity>,

    /// Memory limit (default: the memory request under prod, 1Gi under dev)
    #[arg(long)]
    pub memory_limit: Option<Quantity>,

    /// PostgreSQL image as [REGISTRY/]REPOSITORY[:TAG] (default: bitnamilegacy/postgresql, as
    /// docker.io/bitnami images are no longer pullable; with --engine cnpg, CloudNativePG's
    /// PostgreSQL 17 image)
    #[arg(long)]
    pub image: Option<String>,

    /// Instances of a CloudNativePG cluster: one primary, the rest streaming replicas with
    /// automatic failover (3 for high availability; --engine cnpg only)
    ///
    /// [default: 1; a running or hibernated cluster keeps its number]
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub instances: Option<u8>,

    /// Install the CloudNativePG operator first when it is missing (--engine cnpg)
    #[arg(long)]
    pub install_operator: bool,

    /// Chart reference: OCI URL, repo/chart, or a local path
    #[arg(long, default_value = crate::chart::DEFAULT_CHART)]
    pub chart: String,

    /// Chart version (pinned; a bump is a deliberate, tested change)
    #[arg(long, default_value = crate::chart::DEFAULT_CHART_VERSION, value_parser = chart_version)]
    pub chart_version: String,

    /// Extra Helm values file, applied after pgk8s's own values
    #[arg(long, value_name = "FILE")]
    pub values: Option<PathBuf>,

    /// Use this existing Secret (keys postgres-password and password) instead of creating one
    #[arg(long, value_name = "NAME")]
    pub password_from_secret: Option<ObjectName>,

    /// Delete a leftover data volume whose password is lost, then start fresh (needs --yes)
    #[arg(long)]
    pub recreate_data: bool,

    /// Enable the Prometheus exporter sidecar
    #[arg(long)]
    pub metrics: bool,

    /// Also create a ServiceMonitor for the exporter (Prometheus Operator)
    #[arg(long, requires = "metrics")]
    pub service_monitor: bool,

    /// Do not run migrations after the deploy
    #[arg(long, conflicts_with = "seed")]
    pub skip_migrations: bool,

    /// Load the seed data after migrating
    #[arg(long)]
    pub seed: bool,

    /// Migrations directory (default: the embedded LearnFlow migrations)
    #[arg(short, long, value_name = "DIR")]
    pub migrations_dir: Option<PathBuf>,

    /// Print the plan (checks, Secret name, helm command, values) and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `--profile` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// 250m CPU / 256Mi requested, 1Gi memory limit
    Dev,
    /// Explicit requests and limits required; read replicas allowed
    Prod,
}

/// `pgk8s resize`.
#[derive(Debug, Args)]
pub struct ResizeArgs {
    /// The new size of every data volume (only growing is possible)
    #[arg(long, value_name = "SIZE")]
    pub storage_size: Quantity,

    /// Chart reference for the helm upgrade that records the new size
    #[arg(long, default_value = crate::chart::DEFAULT_CHART)]
    pub chart: String,

    /// Chart version (default: the version the release runs)
    #[arg(long, value_parser = chart_version)]
    pub chart_version: Option<String>,

    /// List the steps and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `pgk8s upgrade`.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("target")
        .required(true)
        .multiple(true)
        .args(["postgres_version", "image", "chart_version"])
))]
pub struct UpgradeArgs {
    /// Move to this PostgreSQL major: tag MAJOR of the image repository the release runs
    #[arg(long, value_name = "MAJOR", conflicts_with = "image",
          value_parser = clap::value_parser!(u32).range(12..=99))]
    pub postgres_version: Option<u32>,

    /// Move to this image, [REGISTRY/]REPOSITORY:TAG (its tag names the PostgreSQL major)
    #[arg(long)]
    pub image: Option<String>,

    /// Move the release to this chart version (the image the release runs is kept unless
    /// --postgres-version or --image says otherwise)
    #[arg(long, value_parser = chart_version)]
    pub chart_version: Option<String>,

    /// Chart reference for the helm upgrade
    #[arg(long, default_value = crate::chart::DEFAULT_CHART)]
    pub chart: String,

    /// Where the backup taken before a major upgrade is written (it is kept)
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub backup_dir: std::path::PathBuf,

    /// List the steps and the values that would change, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `pgk8s undeploy`.
#[derive(Debug, Args)]
pub struct UndeployArgs {
    /// Also delete the data volumes (all data is lost)
    #[arg(long)]
    pub delete_pvc: bool,

    /// Also delete the namespace (only if pgk8s created it, unless --force)
    #[arg(long)]
    pub delete_namespace: bool,

    /// Delete the namespace even if pgk8s did not create it
    #[arg(long, requires = "delete_namespace")]
    pub force: bool,

    /// Print what would be deleted and delete nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `pgk8s migrate`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MigrateArgs {
    /// What to do (default: up)
    #[command(subcommand)]
    pub action: Option<MigrateAction>,

    /// Roll back the newest applied migration (same as `migrate down --steps 1`)
    #[arg(long)]
    pub rollback: bool,

    /// Options shared by every migrate action.
    #[command(flatten)]
    pub options: MigrateOptions,

    /// Options of `migrate up`, also accepted without the `up`.
    #[command(flatten)]
    pub up: MigrateUpArgs,
}

/// Flags every `migrate` action accepts.
#[derive(Clone, Debug, Args)]
pub struct MigrateOptions {
    /// Migrations directory (default: the embedded LearnFlow migrations)
    #[arg(short, long, global = true, value_name = "DIR")]
    pub migrations_dir: Option<PathBuf>,

    /// How long to wait for another migrate run to release the migration lock
    #[arg(long, global = true, default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,

    /// How long to wait for the database to accept connections
    #[arg(long, global = true, default_value = "60s", value_parser = parse_duration)]
    pub wait: Duration,

    /// Run as the chart's superuser (postgres) instead of the application user
    #[arg(long, global = true)]
    pub as_admin: bool,

    /// The action's own `--dry-run` (`migrate status` changes nothing and has none).
    #[arg(skip)]
    pub dry_run: bool,
}

/// `pgk8s migrate up`.
#[derive(Clone, Debug, Default, Args)]
pub struct MigrateUpArgs {
    /// Stop after this version
    #[arg(long, value_name = "VERSION", value_parser = version_parser())]
    pub target: Option<u64>,

    /// Apply pending versions lower than the newest applied one
    #[arg(long)]
    pub allow_out_of_order: bool,

    /// Print what would run, in order, with checksums, and run nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// The `migrate` actions.
#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply pending migrations (the default)
    Up(MigrateUpArgs),
    /// Roll back applied migrations with their .down.sql files, newest first
    Down(MigrateDownArgs),
    /// Show applied, pending and drifted migrations
    Status(MigrateStatusArgs),
    /// Mark VERSION and everything below it as applied without running them
    Baseline(MigrateBaselineArgs),
    /// Re-record the checksums of applied migrations whose files changed (needs --yes)
    Repair(MigrateRepairArgs),
}

/// `pgk8s migrate down`.
#[derive(Clone, Debug, Args)]
pub struct MigrateDownArgs {
    /// How far to roll back.
    #[command(flatten)]
    pub target: MigrateDownTarget,

    /// Print what would be rolled back, newest first, and roll back nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `migrate down --to V` or `--steps N` (one of them; default one step).
#[derive(Clone, Debug, Args)]
#[group(multiple = false)]
pub struct MigrateDownTarget {
    /// Roll back every migration newer than VERSION
    #[arg(long, value_name = "VERSION", value_parser = version_parser())]
    pub to: Option<u64>,

    /// Roll back this many migrations (default 1)
    #[arg(long, value_name = "N")]
    pub steps: Option<u32>,
}

/// `pgk8s migrate repair`.
#[derive(Clone, Debug, Args)]
pub struct MigrateRepairArgs {
    /// Print the checksums that would be re-recorded and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `pgk8s migrate status`.
#[derive(Clone, Debug, Args)]
pub struct MigrateStatusArgs {
    /// Exit 7 when anything is pending or drifted
    #[arg(long)]
    pub exit_code: bool,
}

/// `pgk8s migrate baseline`.
#[derive(Clone, Debug, Args)]
pub struct MigrateBaselineArgs {
    /// The version the existing schema corresponds to
    #[arg(long, value_name = "VERSION", value_parser = version_parser())]
    pub version: u64,

    /// Print the versions that would be marked applied and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `pgk8s seed`.
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Load this SQL file instead of the embedded LearnFlow seed data
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Update rows that already exist to the seed values (default: leave them alone)
    #[arg(long)]
    pub update_existing: bool,

    /// Print what would be loaded and load nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Load as the chart's superuser (postgres) instead of the application user
    #[arg(long)]
    pub as_admin: bool,
}

/// `pgk8s verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Keep checking until healthy or this much time has passed (e.g. 2m)
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub wait: Option<Duration>,

    /// Also check that every LearnFlow table exists and migrations are current
    #[arg(long)]
    pub check_schema: bool,

    /// Migrations directory to compare against (default: the embedded set)
    #[arg(short, long, value_name = "DIR")]
    pub migrations_dir: Option<PathBuf>,
}

/// `pgk8s info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Read the password from the Secret and show it
    #[arg(long)]
    pub show_password: bool,
}

/// `pgk8s backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Output file (default: <release>-<database>-<UTC timestamp>.dump, or .sql with --all)
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Dump roles and every database (pg_dumpall, plain SQL) instead of one database
    #[arg(long)]
    pub all: bool,

    /// Say what would be dumped from which pod into which files, and write nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `pgk8s restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The .dump file written by `pgk8s backup` (its .json manifest must sit beside it)
    #[arg(short, long, value_name = "FILE")]
    pub file: PathBuf,

    /// List what would be restored and restore nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `pgk8s psql`.
#[derive(Debug, Args)]
pub struct PsqlArgs {
    /// Role to connect as: the app user, or postgres (the superuser)
    #[arg(short = 'U', long = "user", value_enum, default_value_t = Role::App)]
    pub role: Role,

    /// Connect as the chart's superuser (the same as -U postgres)
    #[arg(long, conflicts_with = "role")]
    pub as_admin: bool,

    /// Run one SQL command and exit
    #[arg(short, long, value_name = "SQL")]
    pub command: Option<String>,

    /// Further arguments for psql (after --)
    #[arg(last = true)]
    pub psql_args: Vec<String>,
}

/// Which of the two managed roles to act as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// The application user (-u/--username)
    App,
    /// The postgres superuser
    Postgres,
}

/// `pgk8s port-forward`.
#[derive(Debug, Args)]
pub struct PortForwardArgs {
    /// Local port (default 5432, or a free one if 5432 is taken)
    #[arg(short, long)]
    pub port: Option<u16>,

    /// Include the password in the printed connection string and PGPASSWORD line
    #[arg(long)]
    pub show_password: bool,
}

/// `pgk8s logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep streaming new lines
    #[arg(short, long)]
    pub follow: bool,

    /// Number of recent lines to show
    #[arg(long, value_name = "N")]
    pub tail: Option<u32>,

    /// Logs of the previous (crashed) container
    #[arg(long)]
    pub previous: bool,
}

/// `pgk8s rotate-password`.
#[derive(Debug, Args)]
pub struct RotatePasswordArgs {
    /// Whose password to rotate
    #[arg(long = "user", value_enum, default_value_t = Role::App)]
    pub role: Role,

    /// Say what would change and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `pgk8s move`.
#[derive(Debug, Args)]
pub struct MoveArgs {
    /// The engine to move to
    #[arg(long, value_enum)]
    pub to: crate::engine::Engine,

    /// Name of the new cluster (default: <release>-cnpg); its pods, services and Secret take it
    #[arg(long, value_name = "NAME")]
    pub target: Option<ReleaseName>,

    /// Instances of the new cluster (3 for high availability)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub instances: u8,

    /// Data volume size of each instance (default: the source release's)
    #[arg(long)]
    pub storage_size: Option<Quantity>,

    /// StorageClass of the new volumes (default: the cluster's default)
    #[arg(long)]
    pub storage_class: Option<ObjectName>,

    /// PostgreSQL image of the new cluster (default: CloudNativePG's PostgreSQL 17)
    #[arg(long)]
    pub image: Option<String>,

    /// Install the CloudNativePG operator first when it is missing
    #[arg(long)]
    pub install_operator: bool,

    /// Show the new cluster and the checks, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `pgk8s switchover`.
#[derive(Debug, Args)]
pub struct SwitchoverArgs {
    /// The instance to promote: a pod name (`<cluster>-2`) or its number (`2`)
    #[arg(long, value_name = "INSTANCE")]
    pub to: String,
}

/// `pgk8s operator`.
#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// What to do with the operator.
    #[command(subcommand)]
    pub action: OperatorAction,
}

/// The `operator` actions.
#[derive(Debug, Subcommand)]
pub enum OperatorAction {
    /// Install the pinned CloudNativePG operator into cnpg-system with helm (idempotent)
    Install(OperatorInstallArgs),
    /// Show whether the operator and its CRD are installed and running
    Status,
}

/// `pgk8s operator install`.
#[derive(Debug, Args)]
pub struct OperatorInstallArgs {
    /// Show what would be installed and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `pgk8s skill`.
#[derive(Debug, Args)]
pub struct SkillArgs {
    /// What to do with the skill.
    #[command(subcommand)]
    pub action: SkillAction,
}

/// The `skill` actions.
#[derive(Debug, Subcommand)]
pub enum SkillAction {
    /// Write SKILL.md and references/ into DIR/postgres-k8s-setup/
    Install(SkillInstallArgs),
    /// Print SKILL.md
    Show,
}

/// `pgk8s skill install`.
#[derive(Debug, Args)]
pub struct SkillInstallArgs {
    /// Skills directory
    #[arg(long, default_value = ".claude/skills")]
    pub dir: PathBuf,

    /// Overwrite files that differ from the embedded version
    #[arg(long)]
    pub force: bool,

    /// Say which files would be created or replaced and write nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `pgk8s completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate completions for
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn migrate_without_action_takes_up_flags() {
        let cli = Cli::try_parse_from(["pgk8s", "migrate", "--target", "3", "-m", "dir"]).unwrap();
        let Command::Migrate(migrate) = cli.command else {
            panic!("not migrate")
        };
        assert!(migrate.action.is_none());
        assert_eq!(migrate.up.target, Some(3));
        assert_eq!(migrate.options.migrations_dir, Some(PathBuf::from("dir")));
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from(["pgk8s", "verify", "-n", "team-a", "-o", "json"]).unwrap();
        assert_eq!(cli.global.namespace.as_str(), "team-a");
        assert_eq!(cli.global.output, OutputFormat::Json);
    }
}
