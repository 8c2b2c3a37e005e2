//! The admin API's OpenAPI 3.1 document, generated from the handlers' annotations and the
//! wire types, so it cannot drift from the code.

use crate::routes::admin::{audit, credentials, keys, organizations, revocations, users};
use tokenmint_proto::admin as dto;
use tokenmint_proto::feed;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tokenmint admin API",
        description = "Manage organizations, credentials, secrets, signing keys and revocations. \
            Authorize with a Bearer access token obtained from the token endpoint by a credential \
            holding the tokenmint:admin scope (the one `tokenmint init` prints), requested without \
            an audience or with the issuer as audience. Errors are RFC 9457 problem details.",
    ),
    paths(
        organizations::create_organization,
        organizations::list_organizations,
        organizations::show_organization,
        organizations::update_organization,
        credentials::create_credential,
        credentials::list_credentials,
        credentials::show_credential,
        credentials::update_credential,
        credentials::deactivate_credential,
        credentials::activate_credential,
        credentials::rotate_secret,
        credentials::delete_secret,
        credentials::add_public_keys,
        credentials::remove_public_key,
        credentials::revoke_tokens,
        users::create_user,
        users::list_users,
        users::deactivate_user,
        users::reactivate_user,
        users::update_user,
        users::reset_password,
        audit::show_activity,
        audit::list_audit,
        audit::list_alerts,
        keys::list_keys,
        keys::rotate_key,
        keys::withdraw_key,
        revocations::list_revocations,
        revocations::stream_revocations,
    ),
    components(schemas(
        dto::Organization, dto::CreateOrganization, dto::UpdateOrganization, dto::Credential, dto::CreateCredential,
        dto::NewCredential, dto::AddPublicKeys, dto::PublicKeyInfo,
        dto::CreatedCredential, dto::UpdateCredential, dto::RotateSecret, dto::RotatedSecret,
        dto::TokensRevoked, dto::SecretInfo, dto::SigningKey, dto::KeyState, dto::RotateKey,
        dto::CredentialStatus, feed::RevocationPage, feed::RevocationEntry, feed::RevocationEvent, feed::Revocation,
        tokenmint_proto::Problem, tokenmint_proto::Environment, dto::AuditEvent, dto::AlertDelivery,
        dto::DailyCount, dto::CredentialActivity, dto::User, dto::CreatedUser, dto::CreateUser, dto::UserRole, dto::UpdateUser, dto::PasswordReset,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "organizations", description = "The provider's customers"),
        (name = "credentials", description = "Client credentials and their secrets"),
        (name = "keys", description = "Token signing keys"),
        (name = "revocations", description = "The revocation feed followed by gateways"),
        (name = "audit", description = "The audit trail and alert deliveries"),
        (name = "users", description = "People who sign in to the credential portal"),
    )
)]
struct AdminApi;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}

/// The document, with the server's own address as its server.
pub fn document(issuer: &str) -> utoipa::openapi::OpenApi {
    let mut doc = AdminApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.servers = Some(vec![utoipa::openapi::Server::new(issuer)]);
    doc
}
