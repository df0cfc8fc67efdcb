//! Reference data of the demo: admin units (with the 2025 reorganisation),
//! agencies and users.

use crate::DemoUser;
use crate::geography::{DISTRICTS, Geography};
use chrono::NaiveDate;
use panorama_core::{AdminLevel, AdminUnit, Agency, Role, Timestamp, User};

/// Code of the demo province.
pub const PROVINCE: &str = "74";
/// Code of the unit that took over the province on 1 July 2025.
pub const SUCCESSOR: &str = "79";
/// Code of the country.
pub const COUNTRY: &str = "VN";

/// The day Binh Duong and its districts were merged into Ho Chi Minh City.
pub(crate) fn merger_day() -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2025, 7, 1)
}

/// Viet Nam, Binh Duong (74) with its nine districts until 1 July 2025, and
/// Ho Chi Minh City (79) as the successor from that day. Parents come
/// before children.
pub(crate) fn admin_units(geo: &Geography) -> Vec<AdminUnit> {
    let merger = merger_day();
    let mut units = vec![
        AdminUnit {
            code: COUNTRY.into(),
            name: "Việt Nam".into(),
            name_en: Some("Viet Nam".into()),
            level: AdminLevel::Country,
            parent: None,
            geometry: None,
            valid_from: None,
            valid_to: None,
            successors: vec![],
        },
        AdminUnit {
            code: PROVINCE.into(),
            name: "Tỉnh Bình Dương".into(),
            name_en: Some("Binh Duong Province".into()),
            level: AdminLevel::Province,
            parent: Some(COUNTRY.into()),
            geometry: Some(geojson::Geometry::from(&geo.outline)),
            // Re-established from Sông Bé province on 1 January 1997.
            valid_from: NaiveDate::from_ymd_opt(1997, 1, 1),
            valid_to: merger,
            successors: vec![SUCCESSOR.into()],
        },
        AdminUnit {
            code: SUCCESSOR.into(),
            name: "Thành phố Hồ Chí Minh".into(),
            name_en: Some("Ho Chi Minh City".into()),
            level: AdminLevel::Province,
            parent: Some(COUNTRY.into()),
            geometry: None,
            valid_from: merger,
            valid_to: None,
            successors: vec![],
        },
    ];
    for (d, cell) in DISTRICTS.iter().zip(&geo.cells) {
        units.push(AdminUnit {
            code: d.code.into(),
            name: d.name.into(),
            name_en: Some(d.name_en.into()),
            level: AdminLevel::District,
            parent: Some(PROVINCE.into()),
            geometry: Some(geojson::Geometry::from(cell)),
            valid_from: None,
            valid_to: merger,
            successors: vec![SUCCESSOR.into()],
        });
    }
    units
}

/// The agencies of the province: code, Vietnamese name, English name.
pub(crate) const AGENCIES: &[(&str, &str, &str)] = &[
    ("so-y-te", "Sở Y tế", "Department of Health"),
    (
        "so-gd-dt",
        "Sở Giáo dục và Đào tạo",
        "Department of Education and Training",
    ),
    (
        "so-ldtbxh",
        "Sở Lao động – Thương binh và Xã hội",
        "Department of Labour, Invalids and Social Affairs",
    ),
    (
        "so-tn-mt",
        "Sở Tài nguyên và Môi trường",
        "Department of Natural Resources and Environment",
    ),
    (
        "so-gtvt",
        "Sở Giao thông vận tải",
        "Department of Transport",
    ),
    ("cong-an-tinh", "Công an tỉnh", "Provincial Police"),
    (
        "so-kh-dt",
        "Sở Kế hoạch và Đầu tư",
        "Department of Planning and Investment",
    ),
    (
        "cuc-thong-ke",
        "Cục Thống kê",
        "Provincial Statistics Office",
    ),
    (
        "so-cong-thuong",
        "Sở Công Thương",
        "Department of Industry and Trade",
    ),
    ("so-tai-chinh", "Sở Tài chính", "Department of Finance"),
    (
        "so-nn-ptnt",
        "Sở Nông nghiệp và Phát triển nông thôn",
        "Department of Agriculture and Rural Development",
    ),
    (
        "so-tt-tt",
        "Sở Thông tin và Truyền thông",
        "Department of Information and Communications",
    ),
    ("so-xay-dung", "Sở Xây dựng", "Department of Construction"),
    (
        "so-vh-tt-dl",
        "Sở Văn hóa, Thể thao và Du lịch",
        "Department of Culture, Sports and Tourism",
    ),
    (
        "so-kh-cn",
        "Sở Khoa học và Công nghệ",
        "Department of Science and Technology",
    ),
    (
        "ban-ql-kcn",
        "Ban Quản lý các Khu công nghiệp",
        "Industrial Parks Management Board",
    ),
    (
        "dien-luc",
        "Công ty Điện lực Bình Dương",
        "Binh Duong Power Company",
    ),
    (
        "tt-phvhcc",
        "Trung tâm Phục vụ hành chính công",
        "Public Administrative Service Centre",
    ),
    (
        "bch-pctt-tkcn",
        "Ban Chỉ huy Phòng, chống thiên tai và Tìm kiếm cứu nạn",
        "Steering Committee for Disaster Prevention, Search and Rescue",
    ),
    (
        "ioc",
        "Trung tâm Giám sát, điều hành thông minh",
        "Intelligent Operations Centre",
    ),
];

/// Every agency, attached to the province.
pub(crate) fn agencies() -> Vec<Agency> {
    AGENCIES
        .iter()
        .map(|(code, name, name_en)| Agency {
            code: (*code).into(),
            name: (*name).into(),
            name_en: (*name_en).into(),
            admin_unit: Some(PROVINCE.into()),
        })
        .collect()
}

/// Password of the demo administrator.
pub const ADMIN_PASSWORD: &str = "panorama-admin";
/// Password of the demo leader.
pub const LEADER_PASSWORD: &str = "panorama-leader";
/// Password of the demo duty operator.
pub const OPERATOR_PASSWORD: &str = "panorama-operator";
/// Password of every demo agency officer (`officer.<agency>`).
pub const OFFICER_PASSWORD: &str = "panorama-officer";

/// The user name of the officer who submits an agency's statistics.
pub(crate) fn officer_name(agency: &str) -> String {
    format!("officer.{agency}")
}

/// An administrator, a leader, a duty operator and one officer per agency,
/// with the well-known demo passwords.
pub(crate) fn users(now: Timestamp) -> Vec<DemoUser> {
    let user =
        |username: &str, display_name: &str, role: Role, agency: Option<&str>, password: &str| {
            DemoUser {
                user: User {
                    username: username.into(),
                    display_name: display_name.into(),
                    role,
                    agency: agency.map(Into::into),
                    created_at: now,
                },
                password: password.into(),
            }
        };
    let mut users = vec![
        user(
            "admin",
            "Quản trị hệ thống",
            Role::Admin,
            Some("ioc"),
            ADMIN_PASSWORD,
        ),
        user(
            "leader",
            "Lãnh đạo UBND tỉnh",
            Role::Leader,
            None,
            LEADER_PASSWORD,
        ),
        user(
            "operator",
            "Trực ban IOC",
            Role::Operator,
            Some("ioc"),
            OPERATOR_PASSWORD,
        ),
    ];
    for (code, name, _) in AGENCIES {
        users.push(user(
            &officer_name(code),
            &format!("Cán bộ {name}"),
            Role::Officer,
            Some(code),
            OFFICER_PASSWORD,
        ));
    }
    users
}
