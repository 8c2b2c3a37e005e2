//! The admin API's OpenAPI 3.1 document, generated from the handlers' annotations and the
//! wire types, so it cannot drift from the code.

use crate::config::Config;
use crate::routes::admin::{audit, credentials, keys, organizations, revocations, users};
use tokenmint_core::keys::SigningAlgorithm;
use tokenmint_core::scope::ProductAreas;
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

/// The document, with the server's own address as its server and the bounds that depend on
/// its configuration: the longest token lifetime, and the permissions it grants (its product
/// areas' and the system scopes).
pub fn document(issuer: &str, config: &Config) -> serde_json::Value {
    let mut doc = AdminApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.servers = Some(vec![utoipa::openapi::Server::new(issuer)]);
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    let permissions = permissions_pattern(&config.product_areas);
    for body in ["CreateCredential", "UpdateCredential"] {
        let props = &mut doc["components"]["schemas"][body]["properties"];
        if let Some(max) = props.pointer_mut("/token_lifetime_seconds") {
            max["maximum"] = config.max_token_lifetime.into();
        }
        if let Some(items) = props.pointer_mut("/permissions/items") {
            items["pattern"] = permissions.clone().into();
            items["description"] = "A product area's `AREA:read` or `AREA:write`, or a \
                tokenmint:* system scope, of those this server knows (surrounding white space \
                is ignored)"
                .into();
        }
    }
    add_claim_schemas(&mut doc);
    flatten_new_credential(&mut doc);
    add_exclusions(&mut doc);
    add_credential_links(&mut doc);
    if let Some(alg) = doc.pointer_mut("/components/schemas/RotateKey/properties/alg") {
        let mut algs: Vec<serde_json::Value> =
            SigningAlgorithm::ALL.iter().map(|a| a.as_str().into()).collect();
        algs.push(serde_json::Value::Null);
        alg["enum"] = algs.into();
    }
    doc
}

/// States the claim rules of `tokenmint_core::claims` on every body that sets or removes
/// claims: names (printable ASCII, bounded, none reserved in any case), how many, and values
/// (no null, no control character in any string, no number beyond ±(2^53 − 1)). Two rules
/// are beyond what JSON Schema can say, and are told in words: the sizes as compact JSON, and
/// the nesting depth.
fn add_claim_schemas(doc: &mut serde_json::Value) {
    use serde_json::json;
    use tokenmint_core::claims::{
        MAX_CLAIM_DEPTH, MAX_CLAIM_NAME_LEN, MAX_CLAIM_VALUE_BYTES, MAX_CLAIMS, MAX_CLAIMS_BYTES,
        MAX_SAFE_INTEGER, RESERVED_CLAIMS, RESERVED_PREFIX,
    };
    let control = tokenmint_proto::limits::CONTROL_CLASS;
    let text = json!({"type": "string", "pattern": format!("^[^{control}]*$")});
    let most = i64::try_from(MAX_SAFE_INTEGER).unwrap_or(i64::MAX);
    let scalars = [
        text.clone(),
        json!({"type": "number", "minimum": -most, "maximum": most}),
        json!({"type": "boolean"}),
    ];
    // A member of an array or object inside a value may be null; the value itself may not.
    let nested = |null: bool| {
        let mut any: Vec<serde_json::Value> = scalars.to_vec();
        any.push(json!({"type": "array", "items": {"$ref": "#/components/schemas/ClaimMember"}}));
        any.push(json!({"type": "object", "propertyNames": text,
            "additionalProperties": {"$ref": "#/components/schemas/ClaimMember"}}));
        if null {
            any.push(json!({"type": "null"}));
        }
        any
    };
    let name = json!({
        "type": "string",
        "pattern": format!("^[!#-\\[\\]-~]{{1,{MAX_CLAIM_NAME_LEN}}}$"),
        "not": {"pattern": reserved_claims_pattern(RESERVED_CLAIMS, RESERVED_PREFIX)},
        "description": "1 to 128 printable ASCII characters without spaces, quotes or \
            backslashes; not a registered or tokenmint claim (in any case) nor starting with \
            tokenmint",
    });
    let schemas = &mut doc["components"]["schemas"];
    schemas["ClaimValue"] = json!({
        "description": format!("A custom claim's value: not null, no control character in any \
            string, no number beyond ±{MAX_SAFE_INTEGER}, at most {MAX_CLAIM_VALUE_BYTES} bytes \
            as compact JSON and {MAX_CLAIM_DEPTH} levels of nesting."),
        "anyOf": nested(false),
    });
    schemas["ClaimMember"] = json!({"anyOf": nested(true)});
    let claims = json!({
        "type": ["object", "null"],
        "maxProperties": MAX_CLAIMS,
        "propertyNames": name,
        "additionalProperties": {"$ref": "#/components/schemas/ClaimValue"},
        "description": format!("Custom claims to set (added, or replacing the claim of the \
            same name): at most {MAX_CLAIMS} on a credential or organization, \
            {MAX_CLAIMS_BYTES} bytes as compact JSON in all."),
    });
    let remove = json!({
        "type": ["array", "null"],
        "items": name,
        "description": "Names of custom claims to remove; none of them also set.",
    });
    for body in ["CreateCredential", "UpdateCredential", "UpdateOrganization"] {
        let props = &mut schemas[body]["properties"];
        if props.get("claims").is_some() {
            props["claims"] = claims.clone();
        }
        if props.get("remove_claims").is_some() {
            props["remove_claims"] = remove.clone();
        }
    }
}

/// `NewCredential` is a `CreateCredential` with two members more. utoipa documents it as
/// `allOf` the two, which no body can satisfy (`CreateCredential` admits no member beyond its
/// own): it is stated as one object instead, with every member and no other, as the server
/// reads it.
fn flatten_new_credential(doc: &mut serde_json::Value) {
    let schemas = &mut doc["components"]["schemas"];
    let mut flat = schemas["CreateCredential"].clone();
    let extra = schemas["NewCredential"]["allOf"]
        .as_array()
        .and_then(|parts| parts.iter().find_map(|p| p["properties"].as_object().cloned()))
        .unwrap_or_default();
    if let Some(props) = flat["properties"].as_object_mut() {
        props.extend(extra);
        // Read by hand (`NewCredential`'s `Deserialize`): null is taken as false.
        if let Some(no_secret) = props.get_mut("no_secret") {
            no_secret["type"] = serde_json::json!(["boolean", "null"]);
        }
    }
    flat["description"] = schemas["NewCredential"]["description"].clone();
    schemas["NewCredential"] = flat;
}

/// OpenAPI links from a created credential to every operation on it, each path parameter
/// taken from the answer: the client_id, its first secret's id, its first key's thumbprint.
/// Without them, tools that follow links guess the parameters from the answer's members, and
/// may take a secret's id for the client_id.
fn add_credential_links(doc: &mut serde_json::Value) {
    use serde_json::json;
    const PREFIX: &str = "/admin/v1/credentials/{client_id}";
    let from_answer = |param: &str| match param {
        "client_id" => Some("$response.body#/client_id"),
        "secret_id" => Some("$response.body#/credential/secrets/0/id"),
        "key_id" => Some("$response.body#/credential/public_keys/0/thumbprint"),
        _ => None,
    };
    let mut links = serde_json::Map::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        if !path.starts_with(PREFIX) {
            continue;
        }
        for op in item.as_object().into_iter().flat_map(|ops| ops.values()) {
            let Some(id) = op["operationId"].as_str() else { continue };
            let params: serde_json::Map<String, serde_json::Value> = path
                .split(['{', '}'])
                .skip(1)
                .step_by(2)
                .filter_map(|p| Some((p.to_owned(), from_answer(p)?.into())))
                .collect();
            links.insert(id.to_owned(), json!({"operationId": id, "parameters": params}));
        }
    }
    let created = "/paths/~1admin~1v1~1credentials/post/responses/201";
    if let Some(response) = doc.pointer_mut(created) {
        response["links"] = links.into();
    }
}

/// Members that exclude or need each other, as the service refuses them: an expiry with
/// `never_expires`, a limit with `clear_rate_limit`, and `no_secret` without a public key.
fn add_exclusions(doc: &mut serde_json::Value) {
    use serde_json::json;
    let neither = |value: &str, value_type: &str, flag: &str| {
        json!({"not": {
            "required": [value, flag],
            "properties": {value: {"type": value_type}, flag: {"const": true}},
        }})
    };
    let schemas = &mut doc["components"]["schemas"];
    schemas["UpdateCredential"]["allOf"] = json!([
        neither("expires_in_seconds", "integer", "never_expires"),
        neither("rate_limit_per_minute", "integer", "clear_rate_limit"),
    ]);
    schemas["NewCredential"]["if"] =
        json!({"required": ["no_secret"], "properties": {"no_secret": {"const": true}}});
    schemas["NewCredential"]["then"] = json!({"required": ["public_keys"], "properties": {"public_keys": {"type": "array", "minItems": 1}}});
}

/// The reserved claim names and prefix as one pattern that ignores case (ECMA-262 patterns
/// have no case-insensitive flag, so each letter is a class of its two cases).
fn reserved_claims_pattern(names: &[&str], prefix: &str) -> String {
    let fold = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphabetic() {
                    format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
                } else {
                    c.to_string()
                }
            })
            .collect()
    };
    let names: Vec<String> = names.iter().map(|n| fold(n)).collect();
    format!("^(?:(?:{})$|{})", names.join("|"), fold(prefix))
}

/// The permissions a credential may be granted on this server, as a pattern: each of them,
/// with the surrounding white space the server trims.
fn permissions_pattern(areas: &ProductAreas) -> String {
    let ws = tokenmint_proto::limits::WHITESPACE_CLASS;
    // Area names are lower-case letters, digits, `-` and `_`: nothing a pattern would read
    // as syntax outside a class, so they need no escaping.
    let names: Vec<String> = areas
        .all_scopes()
        .into_iter()
        .chain(tokenmint_proto::system_scopes::ALL.iter().map(|s| (*s).to_owned()))
        .collect();
    format!("^[{ws}]*(?:{})[{ws}]*$", names.join("|"))
}
