//! Domains (lĩnh vực): every entity, indicator, rule and dashboard belongs to one.

use serde::{Deserialize, Serialize};

/// A monitored domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Domain {
    /// Stable code, e.g. `health`.
    pub code: String,
    /// Vietnamese name, e.g. `Y tế`.
    pub name: String,
    /// English name, e.g. `Health`.
    pub name_en: String,
    /// Icon name for the UI.
    pub icon: String,
    /// Position on the overview.
    pub sort: i32,
}

/// The domains an IOC monitors, seeded into every new data dir.
pub fn seed_domains() -> Vec<Domain> {
    const D: &[(&str, &str, &str, &str)] = &[
        ("health", "Y tế", "Health", "heart-pulse"),
        ("education", "Giáo dục", "Education", "school"),
        (
            "labour",
            "Lao động – việc làm",
            "Labour supply and demand",
            "briefcase",
        ),
        ("children", "Trẻ em", "Children", "baby"),
        (
            "social-protection",
            "An sinh xã hội",
            "Social protection",
            "hand-heart",
        ),
        (
            "science-technology",
            "Khoa học và công nghệ",
            "Science and technology",
            "flask",
        ),
        (
            "prices",
            "Giá cả – CPI",
            "Consumer prices (CPI)",
            "chart-line",
        ),
        (
            "essential-goods",
            "Cung cầu hàng hóa thiết yếu",
            "Supply and demand of essential goods",
            "basket",
        ),
        ("traffic", "Giao thông", "Traffic", "car"),
        ("public-order", "An ninh trật tự", "Public order", "shield"),
        ("environment", "Môi trường", "Environment", "leaf"),
        (
            "water",
            "Tài nguyên nước – thủy văn",
            "Water resources and hydrology",
            "droplet",
        ),
        (
            "admin-procedures",
            "Thủ tục hành chính",
            "Administrative procedures",
            "file-check",
        ),
        (
            "investment",
            "Đầu tư – FDI",
            "Investment and FDI",
            "building-bank",
        ),
        (
            "economy",
            "Kinh tế – tăng trưởng",
            "Economy and growth",
            "trending-up",
        ),
        (
            "finance-budget",
            "Tài chính – ngân sách",
            "Finance and budget",
            "coins",
        ),
        (
            "industry",
            "Công nghiệp – khu công nghiệp",
            "Industry and industrial parks",
            "factory",
        ),
        ("agriculture", "Nông nghiệp", "Agriculture", "plant"),
        (
            "energy",
            "Điện – năng lượng",
            "Electricity and energy",
            "bolt",
        ),
        (
            "urban",
            "Đô thị – xây dựng",
            "Urban development and construction",
            "buildings",
        ),
        (
            "tourism-culture",
            "Văn hóa – du lịch",
            "Culture and tourism",
            "camera",
        ),
        ("digital", "Chuyển đổi số", "Digital transformation", "cpu"),
        (
            "public-feedback",
            "Phản ánh hiện trường",
            "Citizen feedback",
            "message",
        ),
        (
            "disaster",
            "Phòng chống thiên tai",
            "Disaster prevention",
            "cloud-storm",
        ),
    ];
    D.iter()
        .enumerate()
        .map(|(i, (code, name, name_en, icon))| Domain {
            code: (*code).into(),
            name: (*name).into(),
            name_en: (*name_en).into(),
            icon: (*icon).into(),
            sort: i32::try_from(i).unwrap_or(i32::MAX),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_twenty_domains_with_unique_codes() {
        let d = seed_domains();
        assert!(d.len() > 20);
        let mut codes: Vec<_> = d.iter().map(|d| d.code.clone()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), d.len());
        assert!(
            d.iter()
                .all(|d| crate::error::check_code("code", &d.code).is_ok())
        );
    }
}
