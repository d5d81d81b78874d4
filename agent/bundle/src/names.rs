//! Distinguished names rendered like OpenSSL's one-line format
//! (`O = Demo, CN = Demo Release Signer`), which is what `rauc info` prints,
//! so our output can be compared to RAUC's field by field.

use const_oid::db::rfc4519;
use der::asn1::ObjectIdentifier;
use der::{Tag, Tagged};
use x509_cert::name::Name;

/// OpenSSL short names for the attributes that appear in signing PKIs.
fn short_name(oid: &ObjectIdentifier) -> Option<&'static str> {
    const EMAIL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.1");
    let table = [
        (rfc4519::CN, "CN"),
        (rfc4519::O, "O"),
        (rfc4519::OU, "OU"),
        (rfc4519::C, "C"),
        (rfc4519::L, "L"),
        (rfc4519::ST, "ST"),
        (rfc4519::STREET, "street"),
        (rfc4519::DC, "DC"),
        (rfc4519::SERIAL_NUMBER, "serialNumber"),
        (rfc4519::UID, "UID"),
        (EMAIL, "emailAddress"),
    ];
    table.iter().find(|(o, _)| o == oid).map(|(_, n)| *n)
}

/// Renders `name` as `A = v, B = w` in certificate order.
pub fn oneline(name: &Name) -> String {
    let mut parts = Vec::new();
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            let key = short_name(&atv.oid)
                .map(str::to_string)
                .unwrap_or_else(|| atv.oid.to_string());
            parts.push(format!("{key} = {}", value_text(&atv.value)));
        }
    }
    parts.join(", ")
}

/// The (last) common name of `name`, as OpenSSL's `X509_NAME_get_text_by_NID` would find it.
pub fn common_name(name: &Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == rfc4519::CN)
        .map(|atv| value_text(&atv.value))
        .next_back()
}

fn value_text(value: &der::Any) -> String {
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::TeletexString
        | Tag::VisibleString => String::from_utf8_lossy(value.value()).into_owned(),
        _ => format!("#{}", hex::encode(value.value())),
    }
}
