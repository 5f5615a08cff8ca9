//! `kheo-server admin ...`: account, device and organisation-tree
//! administration straight on the store, for the first admin account, bulk
//! set-up and scripts. The same operations are on the admin API.
//!
//! Account and device changes take effect on a running server at its next
//! request; a new organisation tree imported here is read when the server
//! starts (use `PUT /api/v1/admin/org` to change it live). `migrate-store`,
//! `backup` and `restore` work on whole stores ([`store::migrate`],
//! [`store::backup`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use kheo_shared::codes::{Code, Role};
use kheo_shared::scalars::Timestamp;

use crate::accounts::{Accounts, NewAccount};
use crate::config::Config;
use crate::org::{self, OrgTree};
use crate::store::directory::AccountUpdate;
use crate::store::migrate::{self, MigrateOptions, Progress};
use crate::store::{self, Database};

fn parse_role(s: &str) -> Result<Role, String> {
    Role::from_code(s).ok_or_else(|| "one of volunteer, commune_staff, province_staff, admin".to_owned())
}

#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Create an account bound to a unit.
    CreateAccount {
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        unit: String,
        /// Password or PIN (at least 6 characters).
        #[arg(long, env = "KHEO_NEW_SECRET")]
        secret: String,
        #[arg(long)]
        phone: Option<String>,
    },
    /// Create the accounts of a CSV file (username,phone,display_name,role,unit,secret).
    ImportAccounts {
        csv: PathBuf,
    },
    /// List every account with its role, unit and state.
    ListAccounts,
    /// Refuse the account's logins and devices until it is enabled again.
    DisableAccount {
        username: String,
    },
    EnableAccount {
        username: String,
    },
    /// Bind an account to another unit; its devices follow at their next sync.
    MoveAccount {
        username: String,
        unit: String,
    },
    /// List devices, of one account or of all.
    ListDevices {
        #[arg(long)]
        username: Option<String>,
    },
    /// Sign a device out: it is refused from its next sync on.
    RevokeDevice {
        device_id: String,
    },
    /// Replace the organisation tree from JSON ({"units": [...], "successions": [...]}).
    ImportOrg {
        json: PathBuf,
    },
    /// Replace the organisation tree from two CSV files (code,name,level,parent,valid_from,valid_to
    /// and old,new,effective).
    ImportOrgCsv {
        units: PathBuf,
        successions: PathBuf,
    },
    /// Print the organisation tree as JSON.
    ExportOrg,
    /// Write the organisation tree as units.csv and successions.csv into a directory.
    ExportOrgCsv {
        dir: PathBuf,
    },
    /// List changes refused by a rule, with the reason.
    ListQuarantine,
    /// Copy a store from its SQLite file into PostgreSQL, then verify the copy
    /// (heads of every document, row counts, the read model). Stop the server
    /// of the SQLite store first. A run cut off is finished by running it again.
    MigrateStore {
        /// The SQLite store: its file, or the data directory that holds it.
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database to copy into (`postgres://user:password@host/db`).
        #[arg(long, env = "KHEO_MIGRATE_TO")]
        to: String,
        /// Write into a database that already holds data (rows already there are kept).
        #[arg(long)]
        into_non_empty: bool,
        /// Documents copied per transaction.
        #[arg(long, default_value = "100", value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch: u32,
    },
    /// Write a consistent copy of the SQLite store to a new file while the server runs.
    Backup {
        /// The file to create (an existing file is never overwritten).
        #[arg(long)]
        to: PathBuf,
    },
    /// Put a backup in place as the SQLite store of --data-dir. Stop the server
    /// and move the old store aside first: a store in place is never overwritten.
    Restore {
        #[arg(long)]
        from: PathBuf,
    },
}

/// What `admin backup` and `admin restore` answer on PostgreSQL.
const PG_DUMP_ADVICE: &str = "the store is PostgreSQL: back it up with its own tools, e.g. \
     `pg_dump -Fc -f kheo.dump \"$KHEO_DATABASE_URL\"`, and restore into an empty database with \
     `pg_restore --no-owner -d \"$KHEO_DATABASE_URL\" kheo.dump` (see the README)";

pub async fn run(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    // These work on files and databases of their own, not on the configured store.
    match command {
        AdminCommand::MigrateStore { from, to, into_non_empty, batch } => {
            return migrate_store(&from, &to, into_non_empty, batch as usize).await;
        }
        AdminCommand::Backup { to } => {
            if config.database_url.is_some() {
                bail!(PG_DUMP_ADVICE);
            }
            let size = store::backup::backup(&config.data_dir, &to).await?;
            println!(
                "backed up {} to {} ({size} bytes)",
                config.data_dir.join(store::STORE_FILE).display(),
                to.display()
            );
            return Ok(());
        }
        AdminCommand::Restore { from } => {
            if config.database_url.is_some() {
                bail!(PG_DUMP_ADVICE);
            }
            let size = store::backup::restore(&from, &config.data_dir).await?;
            println!(
                "restored {} as {} ({size} bytes)",
                from.display(),
                config.data_dir.join(store::STORE_FILE).display()
            );
            return Ok(());
        }
        _ => {}
    }
    let db = store::open(config.database_url.as_deref(), &config.data_dir).await.context("opening the store")?;
    let (units, successions) = db.directory.org().await?;
    let accounts = Accounts::new(db.directory.clone(), db.logins.clone(), OrgTree::new(units, successions)?);
    let result = execute(&accounts, command).await;
    db.close().await;
    result
}

async fn account_id(accounts: &Accounts, username: &str) -> anyhow::Result<String> {
    match accounts.directory.account_by_login(&username.to_lowercase()).await? {
        Some(a) => Ok(a.id),
        None => bail!("no account {username}"),
    }
}

async fn execute(accounts: &Accounts, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateAccount { username, display_name, role, unit, secret, phone } => {
            let info =
                accounts.create_account(NewAccount { username, phone, display_name, role, unit, secret }).await?;
            println!("created {} ({}, {})", info.username, info.role, info.unit);
        }
        AdminCommand::ImportAccounts { csv } => {
            let bytes = std::fs::read(&csv).with_context(|| format!("reading {}", csv.display()))?;
            let created = accounts.import_csv(&bytes).await?;
            println!("created {} accounts", created.len());
        }
        AdminCommand::ListAccounts => {
            for a in accounts.directory.accounts().await? {
                let state = if a.disabled { "disabled" } else { "active" };
                println!("{:<20} {:<15} {:<16} {:<8} {}", a.username, a.role.code(), a.unit, state, a.display_name);
            }
        }
        AdminCommand::DisableAccount { username } => {
            let id = account_id(accounts, &username).await?;
            accounts.update_account(&id, AccountUpdate { disabled: Some(true), ..Default::default() }).await?;
            println!("disabled {username}");
        }
        AdminCommand::EnableAccount { username } => {
            let id = account_id(accounts, &username).await?;
            accounts.update_account(&id, AccountUpdate { disabled: Some(false), ..Default::default() }).await?;
            println!("enabled {username}");
        }
        AdminCommand::MoveAccount { username, unit } => {
            let id = account_id(accounts, &username).await?;
            accounts.update_account(&id, AccountUpdate { unit: Some(unit.clone()), ..Default::default() }).await?;
            println!("moved {username} to {unit}");
        }
        AdminCommand::ListDevices { username } => {
            let account = match username {
                Some(u) => Some(account_id(accounts, &u).await?),
                None => None,
            };
            for d in accounts.directory.devices(account.as_deref()).await? {
                let state = if d.revoked_at.is_some() { "revoked" } else { "active" };
                println!("{}  {:<8} account {}  {}", d.id, state, d.account, d.label);
            }
        }
        AdminCommand::RevokeDevice { device_id } => {
            if !accounts.directory.revoke_device(&device_id, Timestamp::now().millis()).await? {
                bail!("no active device {device_id}");
            }
            println!("revoked {device_id}");
        }
        AdminCommand::ImportOrg { json } => {
            let text = std::fs::read_to_string(&json).with_context(|| format!("reading {}", json.display()))?;
            let tree = org::from_json(&text)?;
            let n = tree.units().len();
            accounts.replace_org(tree).await?;
            println!("imported {n} units");
        }
        AdminCommand::ImportOrgCsv { units, successions } => {
            let open = |p: &PathBuf| std::fs::File::open(p).with_context(|| format!("reading {}", p.display()));
            let tree = org::from_csv(open(&units)?, open(&successions)?)?;
            let n = tree.units().len();
            accounts.replace_org(tree).await?;
            println!("imported {n} units");
        }
        AdminCommand::ExportOrg => println!("{}", org::to_json(&accounts.org())?),
        AdminCommand::ExportOrgCsv { dir } => {
            std::fs::create_dir_all(&dir)?;
            let tree = accounts.org();
            org::units_to_csv(&tree, std::fs::File::create(dir.join("units.csv"))?)?;
            org::successions_to_csv(&tree, std::fs::File::create(dir.join("successions.csv"))?)?;
            println!("wrote {} units to {}", tree.units().len(), dir.display());
        }
        AdminCommand::ListQuarantine => {
            for q in accounts.directory.quarantined().await? {
                println!("{}  {}  {}  {}  {}: {}", q.id, q.at, q.device, q.doc_id, q.rule, q.message);
            }
        }
        AdminCommand::MigrateStore { .. } | AdminCommand::Backup { .. } | AdminCommand::Restore { .. } => {
            unreachable!("handled before the store is opened")
        }
    }
    Ok(())
}

/// `admin migrate-store`: opens both sides, copies, verifies, prints the summary.
async fn migrate_store(from: &Path, to: &str, into_non_empty: bool, batch: usize) -> anyhow::Result<()> {
    let file = if from.is_dir() { from.join(store::STORE_FILE) } else { from.to_owned() };
    // Opening a missing file would create an empty store and "migrate" nothing.
    if !file.is_file() {
        bail!("no SQLite store at {}", file.display());
    }
    let file = file.canonicalize().with_context(|| format!("resolving {}", file.display()))?;
    // A server still writing would have its syncs left out of the copy.
    if store::open_elsewhere(&file).with_context(|| format!("checking {}", file.display()))? {
        bail!("{} is open in another process (its server?): stop it, then run this again", file.display());
    }
    let source = Database::open_sqlite_file(&file).await.with_context(|| format!("opening {}", file.display()))?;
    let target = store::open(Some(to), Path::new(".")).await.context("opening the PostgreSQL database")?;
    println!(
        "copying {} into PostgreSQL (stop its server first: writes made during the copy may be missed)",
        file.display()
    );
    let options = MigrateOptions { batch_docs: batch, into_non_empty, ..MigrateOptions::default() };
    let mut report = |p: &Progress| match p {
        Progress::Copied { table, read, written } => println!("  {table:<12} {read:>9} read, {written:>9} written"),
        Progress::Verified { documents, of } => println!("  verified {documents} of {of} documents"),
    };
    let result = migrate::migrate(&source, &target, &format!("sqlite:{}", file.display()), &options, &mut report).await;
    source.store.close().await;
    target.store.close().await;
    let summary = result?;
    if summary.verified_only {
        println!("this store was already copied there: nothing was copied again, only verified");
    } else if summary.resumed {
        println!("carried on from an earlier run");
    }
    println!("{:<14} {:>10} {:>10}", "table", "source", "target");
    for t in summary.tables.iter().chain(&summary.read_model) {
        println!("{:<14} {:>10} {:>10}", t.table, t.source, t.target);
    }
    println!(
        "verified: {} documents with equal heads, every table's rows, the read model; {} rows written by this run",
        summary.documents_verified, summary.written
    );
    Ok(())
}
