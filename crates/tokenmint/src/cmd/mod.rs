//! One module per subcommand.

pub mod audit;
pub mod call;
pub mod credentials;
pub mod gateway;
pub mod init;
pub mod keys;
pub mod orgs;
pub mod serve;
pub mod token;
pub mod users;
