//! The demo's indicators (chỉ tiêu): every domain has a few, one of them the
//! headline, each with plan targets per year and a history of values per
//! province and, where it makes sense, per district.
//!
//! Public figures are used where they exist (99 % of dossiers handled
//! online, urbanisation over 85 %, 4,049 FDI projects from 65 countries
//! with USD 39.55 bn registered, USD 2.6 bn of FDI in 2021); the rest are
//! plausible, marked as illustrative in each indicator's `source`. Each
//! indicator's latest value is made to land in a chosen status (on track,
//! at risk, off track), so the overview shows all three.

use crate::catalog::{AGENCIES, PROVINCE, officer_name};
use crate::geography::DISTRICTS;
use crate::noise::{hash3, signed, str_hash};
use chrono::{Datelike, Days, NaiveDate};
use panorama_core::{
    Agg, Computation, Direction, Indicator, IndicatorStatus, IndicatorValueInput, Period,
    Periodicity, Thresholds, ValueStatus,
};
use std::collections::BTreeMap;

/// The status an indicator's latest value is made to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    G,
    A,
    R,
}

impl Want {
    fn status(self) -> IndicatorStatus {
        match self {
            Want::G => IndicatorStatus::Green,
            Want::A => IndicatorStatus::Amber,
            Want::R => IndicatorStatus::Red,
        }
    }
}

/// How an indicator splits over the districts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Split {
    /// Province only.
    None,
    /// A count: the province value is the sum of the districts'.
    Sum,
    /// A rate: each district sits a fixed distance (up to this) from the province.
    Rate(f64),
}

/// Seasonal shapes by month (multipliers).
const FLAT: [f64; 12] = [1.0; 12];
const DRY: [f64; 12] = [
    1.3, 1.25, 1.2, 1.05, 0.95, 0.85, 0.8, 0.8, 0.8, 0.85, 1.0, 1.2,
];
const RAINY: [f64; 12] = [0.5, 0.35, 0.3, 0.35, 0.6, 0.9, 1.2, 1.4, 1.6, 1.6, 1.3, 0.8];
const TET: [f64; 12] = [
    1.15, 1.2, 0.92, 0.95, 0.97, 0.97, 0.98, 0.98, 0.97, 0.98, 1.0, 1.1,
];
const TOURISM: [f64; 12] = [
    1.3, 1.5, 0.9, 1.0, 1.05, 1.15, 1.2, 1.1, 0.85, 0.85, 0.9, 1.1,
];
const RUBBER: [f64; 12] = [0.9, 0.4, 0.3, 0.5, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.4, 1.3];
const HEAT: [f64; 12] = [
    0.92, 0.88, 1.02, 1.1, 1.12, 1.05, 1.02, 1.0, 0.98, 0.98, 0.97, 0.96,
];
const HIRING: [f64; 12] = [
    1.1, 1.5, 1.3, 1.0, 0.95, 0.9, 0.9, 0.95, 1.0, 1.0, 0.95, 0.8,
];
const SCHOOL: [f64; 12] = [
    0.99, 0.97, 1.0, 1.0, 1.0, 0.98, 0.96, 0.97, 1.0, 1.0, 1.0, 0.995,
];
const TIDES: [f64; 12] = [
    0.95, 0.9, 0.85, 0.85, 0.9, 0.9, 0.95, 1.0, 1.1, 1.15, 1.18, 1.05,
];

/// One indicator of the catalogue and how its history is generated.
#[derive(Debug, Clone, Copy)]
struct Spec {
    code: &'static str,
    name: &'static str,
    name_en: &'static str,
    domain: &'static str,
    unit: &'static str,
    per: Periodicity,
    dir: Direction,
    owner: &'static str,
    headline: bool,
    thresholds: Thresholds,
    /// Status the latest value must have.
    want: Want,
    /// A fixed plan target for every year (0: derived from the values so
    /// that the latest lands in `want`).
    target: f64,
    /// Latest value (ignored when `knots` are given).
    latest: f64,
    /// Relative change per year.
    growth: f64,
    /// Absolute change per year.
    slope: f64,
    /// Value at (decimal year) points, interpolated; overrides the trend.
    knots: &'static [(f64, f64)],
    season: [f64; 12],
    /// Relative noise.
    noise: f64,
    /// Absolute noise.
    jitter: f64,
    lo: f64,
    hi: f64,
    /// Rounding: decimals (negative rounds to tens, hundreds…).
    decimals: i32,
    split: Split,
    /// Computed from a series instead of submitted.
    series: Option<(&'static str, &'static str, Agg)>,
    /// Notes on particular periods (public figures).
    notes: &'static [(&'static str, &'static str)],
}

const DEFAULT: Spec = Spec {
    code: "",
    name: "",
    name_en: "",
    domain: "",
    unit: "",
    per: Periodicity::Monthly,
    dir: Direction::HigherIsBetter,
    owner: "cuc-thong-ke",
    headline: false,
    thresholds: Thresholds::TargetRatio {
        green: 1.0,
        amber: 0.9,
    },
    want: Want::G,
    target: 0.0,
    latest: 0.0,
    growth: 0.0,
    slope: 0.0,
    knots: &[],
    season: FLAT,
    noise: 0.03,
    jitter: 0.0,
    lo: 0.0,
    hi: f64::MAX,
    decimals: 0,
    split: Split::None,
    series: None,
    notes: &[],
};

use Direction::LowerIsBetter as LOWER;
use Periodicity::{Daily, Quarterly, Yearly};

const fn ratio(green: f64, amber: f64) -> Thresholds {
    Thresholds::TargetRatio { green, amber }
}

const fn absolute(green: f64, amber: f64) -> Thresholds {
    Thresholds::Absolute { green, amber }
}

const FDI_NOTE: &str = "Số liệu công bố khi khai trương IOC (4/2022): 4.049 dự án FDI từ 65 quốc gia và vùng lãnh thổ, tổng vốn đăng ký 39,55 tỷ USD";

/// The catalogue, domain by domain.
const SPECS: &[Spec] = &[
    // --- health -------------------------------------------------------------
    Spec {
        code: "health-bed-occupancy",
        name: "Công suất sử dụng giường bệnh",
        name_en: "Hospital bed occupancy",
        domain: "health",
        unit: "%",
        dir: LOWER,
        owner: "so-y-te",
        headline: true,
        thresholds: absolute(85.0, 95.0),
        want: Want::A,
        latest: 91.5,
        slope: 1.0,
        lo: 50.0,
        hi: 130.0,
        decimals: 1,
        split: Split::Rate(6.0),
        ..DEFAULT
    },
    Spec {
        code: "health-insurance-coverage",
        name: "Tỷ lệ dân số tham gia bảo hiểm y tế",
        name_en: "Population covered by health insurance",
        domain: "health",
        unit: "%",
        per: Quarterly,
        owner: "so-y-te",
        thresholds: ratio(1.0, 0.97),
        want: Want::A,
        latest: 93.6,
        slope: 0.8,
        noise: 0.004,
        hi: 100.0,
        decimals: 1,
        split: Split::Rate(2.5),
        ..DEFAULT
    },
    Spec {
        code: "health-dengue-cases",
        name: "Số ca mắc sốt xuất huyết",
        name_en: "Dengue fever cases",
        domain: "health",
        unit: "ca",
        dir: LOWER,
        owner: "so-y-te",
        want: Want::R,
        latest: 820.0,
        growth: 0.05,
        season: RAINY,
        noise: 0.15,
        split: Split::Sum,
        ..DEFAULT
    },
    Spec {
        code: "health-doctors-per-10k",
        name: "Số bác sĩ trên 10.000 dân",
        name_en: "Doctors per 10,000 inhabitants",
        domain: "health",
        unit: "bác sĩ",
        per: Yearly,
        owner: "so-y-te",
        want: Want::G,
        latest: 9.4,
        slope: 0.35,
        noise: 0.01,
        decimals: 1,
        ..DEFAULT
    },
    // --- education ------------------------------------------------------------
    Spec {
        code: "edu-net-enrolment-primary",
        name: "Tỷ lệ trẻ em đi học đúng độ tuổi cấp tiểu học",
        name_en: "Net enrolment rate, primary school",
        domain: "education",
        unit: "%",
        per: Yearly,
        owner: "so-gd-dt",
        headline: true,
        thresholds: ratio(1.0, 0.98),
        want: Want::G,
        latest: 99.6,
        slope: 0.1,
        noise: 0.002,
        hi: 100.0,
        decimals: 1,
        ..DEFAULT
    },
    Spec {
        code: "edu-net-enrolment-upper-secondary",
        name: "Tỷ lệ đi học đúng độ tuổi cấp trung học phổ thông",
        name_en: "Net enrolment rate, upper secondary school",
        domain: "education",
        unit: "%",
        per: Yearly,
        owner: "so-gd-dt",
        want: Want::A,
        latest: 71.5,
        slope: 1.2,
        noise: 0.01,
        decimals: 1,
        ..DEFAULT
    },
    Spec {
        code: "edu-attendance",
        name: "Tỷ lệ học sinh đi học chuyên cần",
        name_en: "Pupil attendance rate",
        domain: "education",
        unit: "%",
        owner: "so-gd-dt",
        thresholds: ratio(1.0, 0.97),
        want: Want::G,
        latest: 97.8,
        slope: 0.1,
        season: SCHOOL,
        noise: 0.004,
        hi: 100.0,
        decimals: 1,
        split: Split::Rate(1.0),
        ..DEFAULT
    },
    Spec {
        code: "edu-schools-national-standard",
        name: "Tỷ lệ trường đạt chuẩn quốc gia",
        name_en: "Schools meeting the national standard",
        domain: "education",
        unit: "%",
        per: Yearly,
        owner: "so-gd-dt",
        want: Want::R,
        latest: 64.0,
        slope: 2.5,
        noise: 0.01,
        decimals: 1,
        ..DEFAULT
    },
    // --- labour ---------------------------------------------------------------
    Spec {
        code: "labour-demand",
        name: "Nhu cầu tuyển dụng lao động",
        name_en: "Labour demand (vacancies notified)",
        domain: "labour",
        unit: "người",
        owner: "so-ldtbxh",
        headline: true,
        want: Want::A,
        latest: 9_800.0,
        growth: 0.04,
        season: HIRING,
        noise: 0.08,
        split: Split::Sum,
        ..DEFAULT
    },
    Spec {
        code: "labour-job-seekers",
        name: "Số người đăng ký tìm việc làm",
        name_en: "Registered job seekers",
        domain: "labour",
        unit: "người",
        dir: LOWER,
        owner: "so-ldtbxh",
        want: Want::G,
        latest: 6_200.0,
        growth: -0.02,
        noise: 0.08,
        split: Split::Sum,
        ..DEFAULT
    },
    Spec {
        code: "labour-placements",
        name: "Số lao động được giới thiệu, giải quyết việc làm",
        name_en: "Workers placed in jobs",
        domain: "labour",
        unit: "người",
        owner: "so-ldtbxh",
        want: Want::G,
        latest: 5_400.0,
        growth: 0.05,
        season: HIRING,
        noise: 0.08,
        split: Split::Sum,
        ..DEFAULT
    },
    Spec {
        code: "labour-urban-unemployment",
        name: "Tỷ lệ thất nghiệp khu vực thành thị",
        name_en: "Urban unemployment rate",
        domain: "labour",
        unit: "%",
        per: Quarterly,
        dir: LOWER,
        want: Want::G,
        latest: 2.15,
        slope: -0.05,
        noise: 0.05,
        decimals: 2,
        ..DEFAULT
    },
    Spec {
        code: "labour-trained-share",
        name: "Tỷ lệ lao động qua đào tạo",
        name_en: "Share of workers with training",
        domain: "labour",
        unit: "%",
        per: Yearly,
        owner: "so-ldtbxh",
        thresholds: ratio(1.0, 0.95),
        want: Want::G,
        latest: 87.5,
        slope: 1.0,
        noise: 0.005,
        hi: 100.0,
        decimals: 1,
        ..DEFAULT
    },
    // --- children -------------------------------------------------------------
    Spec {
        code: "children-full-immunisation",
        name: "Tỷ lệ trẻ em dưới 1 tuổi được tiêm chủng đầy đủ",
        name_en: "Infants fully immunised",
        domain: "children",
        unit: "%",
        owner: "so-y-te",
        headline: true,
        thresholds: ratio(1.0, 0.95),
        want: Want::R,
        latest: 86.5,
        slope: -1.0,
        noise: 0.01,
        hi: 100.0,
        decimals: 1,
        split: Split::Rate(3.0),
        ..DEFAULT
    },
    Spec {
        code: "children-stunting",
        name: "Tỷ lệ trẻ em dưới 5 tuổi suy dinh dưỡng thể thấp còi",
        name_en: "Stunting among children under five",
        domain: "children",
        unit: "%",
        per: Yearly,
        dir: LOWER,
        owner: "so-y-te",
        want: Want::A,
        latest: 8.9,
        slope: -0.25,
        noise: 0.01,
        decimals: 1,
        ..DEFAULT
    },
    Spec {
        code: "children-special-support",
        name: "Số trẻ em có hoàn cảnh đặc biệt được trợ giúp",
        name_en: "Children in special circumstances supported",
        domain: "children",
        unit: "trẻ em",
        per: Quarterly,
        owner: "so-ldtbxh",
        want: Want::G,
        latest: 1_650.0,
        growth: 0.05,
        noise: 0.06,
        split: Split::Sum,
        ..DEFAULT
    },
    // --- social protection ----------------------------------------------------
    Spec {
        code: "social-allowance-beneficiaries",
        name: "Số đối tượng bảo trợ xã hội hưởng trợ cấp hằng tháng",
        name_en: "Monthly social allowance beneficiaries",
        domain: "social-protection",
        unit: "người",
        owner: "so-ldtbxh",
        headline: true,
        want: Want::G,
        latest: 31_800.0,
        growth: 0.03,
        noise: 0.005,
        split: Split::Sum,
        ..DEFAULT
    },
    Spec {
        code: "social-poor-households",
        name: "Tỷ lệ hộ nghèo theo chuẩn nghèo của tỉnh",
        name_en: "Poor households (provincial poverty line)",
        domain: "social-protection",
        unit: "%",
        per: Yearly,
        dir: LOWER,
        owner: "so-ldtbxh",
        want: Want::A,
        latest: 0.95,
        slope: -0.12,
        noise: 0.02,
        lo: 0.1,
        decimals: 2,
        ..DEFAULT
    },
    Spec {
        code: "social-insurance-coverage",
        name: "Tỷ lệ lực lượng lao động tham gia bảo hiểm xã hội",
        name_en: "Workforce covered by social insurance",
        domain: "social-protection",
        unit: "%",
        per: Quarterly,
        owner: "so-ldtbxh",
        want: Want::G,
        latest: 56.4,
        slope: 1.2,
        noise: 0.004,
        decimals: 1,
        ..DEFAULT
    },
    // --- science and technology ------------------------------------------------
    Spec {
        code: "sci-ip-applications",
        name: "Số đơn đăng ký sở hữu công nghiệp",
        name_en: "Industrial property applications",
        domain: "science-technology",
        unit: "đơn",
        per: Quarterly,
        owner: "so-kh-cn",
        headline: true,
        want: Want::G,
        latest: 410.0,
        growth: 0.08,
        noise: 0.08,
        ..DEFAULT
    },
    Spec {
        code: "sci-st-enterprises",
        name: "Số doanh nghiệp khoa học và công nghệ",
        name_en: "Science and technology enterprises",
        domain: "science-technology",
        unit: "doanh nghiệp",
        per: Yearly,
        owner: "so-kh-cn",
        want: Want::R,
        latest: 31.0,
        slope: 2.0,
        noise: 0.02,
        ..DEFAULT
    },
    Spec {
        code: "sci-rd-spending",
        name: "Chi cho nghiên cứu và phát triển so với GRDP",
        name_en: "R&D spending as a share of GRDP",
        domain: "science-technology",
        unit: "%",
        per: Yearly,
        owner: "so-kh-cn",
        want: Want::A,
        latest: 0.62,
        slope: 0.03,
        noise: 0.02,
        decimals: 2,
        ..DEFAULT
    },
    // --- prices ---------------------------------------------------------------
    Spec {
        code: "cpi-yoy",
        name: "Chỉ số giá tiêu dùng (CPI) so với cùng kỳ năm trước",
        name_en: "Consumer price index, change on a year earlier",
        domain: "prices",
        unit: "%",
        dir: LOWER,
        headline: true,
        want: Want::G,
        target: 4.0,
        latest: 3.1,
        noise: 0.0,
        jitter: 0.4,
        lo: -2.0,
        hi: 12.0,
        decimals: 2,
        ..DEFAULT
    },
    Spec {
        code: "cpi-mom",
        name: "Chỉ số giá tiêu dùng (CPI) so với tháng trước",
        name_en: "Consumer price index, change on the previous month",
        domain: "prices",
        unit: "%",
        dir: LOWER,
        thresholds: absolute(0.5, 1.0),
        want: Want::A,
        latest: 0.72,
        season: TET,
        noise: 0.0,
        jitter: 0.45,
        lo: -1.5,
        hi: 3.0,
        decimals: 2,
        ..DEFAULT
    },
    Spec {
        code: "cpi-food",
        name: "CPI nhóm hàng ăn và dịch vụ ăn uống so với cùng kỳ",
        name_en: "Food and catering CPI, change on a year earlier",
        domain: "prices",
        unit: "%",
        dir: LOWER,
        want: Want::R,
        target: 4.5,
        latest: 6.2,
        noise: 0.0,
        jitter: 0.5,
        lo: -3.0,
        hi: 15.0,
        decimals: 2,
        ..DEFAULT
    },
    // --- essential goods ----------------------------------------------------------
    Spec {
        code: "price-rice",
        name: "Giá gạo tẻ thường",
        name_en: "Ordinary rice, retail price",
        domain: "essential-goods",
        unit: "đồng/kg",
        dir: LOWER,
        owner: "so-cong-thuong",
        headline: true,
        want: Want::G,
        target: 17_000.0,
        latest: 16_200.0,
        growth: 0.04,
        noise: 0.015,
        decimals: -2,
        ..DEFAULT
    },
    Spec {
        code: "price-pork",
        name: "Giá heo hơi",
        name_en: "Live pig price",
        domain: "essential-goods",
        unit: "đồng/kg",
        dir: LOWER,
        owner: "so-cong-thuong",
        want: Want::A,
        target: 65_000.0,
        latest: 69_500.0,
        growth: 0.06,
        season: TET,
        noise: 0.04,
        decimals: -2,
        ..DEFAULT
    },
    Spec {
        code: "price-petrol",
        name: "Giá xăng RON 95-III",
        name_en: "RON 95-III petrol price",
        domain: "essential-goods",
        unit: "đồng/lít",
        dir: LOWER,
        owner: "so-cong-thuong",
        want: Want::G,
        target: 23_000.0,
        latest: 20_400.0,
        growth: -0.03,
        noise: 0.04,
        decimals: -1,
        ..DEFAULT
    },
    Spec {
        code: "goods-stock-days",
        name: "Số ngày dự trữ hàng thiết yếu tại hệ thống phân phối",
        name_en: "Days of essential goods in stock at retailers",
        domain: "essential-goods",
        unit: "ngày",
        owner: "so-cong-thuong",
        want: Want::G,
        latest: 32.0,
        season: TET,
        noise: 0.05,
        ..DEFAULT
    },
    // --- traffic --------------------------------------------------------------
    Spec {
        code: "traffic-accidents",
        name: "Số vụ tai nạn giao thông",
        name_en: "Road traffic accidents",
        domain: "traffic",
        unit: "vụ",
        dir: LOWER,
        owner: "cong-an-tinh",
        headline: true,
        want: Want::A,
        latest: 48.0,
        growth: -0.05,
        noise: 0.12,
        split: Split::Sum,
        ..DEFAULT
    },
    Spec {
        code: "traffic-deaths",
        name: "Số người chết do tai nạn giao thông",
        name_en: "Road traffic deaths",
        domain: "traffic",
        unit: "người",
        dir: LOWER,
        owner: "cong-an-tinh",
        want: Want::R,
        latest: 31.0,
        growth: -0.04,
        noise: 0.15,
        split: Split::Sum,
        ..DEFAULT
    },
    Spec {
        code: "traffic-main-road-speed",
        name: "Tốc độ trung bình trên các tuyến đường chính",
        name_en: "Average speed on main roads",
        domain: "traffic",
        unit: "km/h",
        per: Daily,
        owner: "so-gtvt",
        thresholds: absolute(35.0, 25.0),
        want: Want::G,
        latest: 37.5,
        noise: 0.06,
        decimals: 1,
        series: Some(("TrafficFlowObserved", "averageVehicleSpeed", Agg::Avg)),
        ..DEFAULT
    },
    Spec {
        code: "traffic-congestion-hotspots",
        name: "Số điểm ùn tắc giao thông thường xuyên",
        name_en: "Recurrent congestion hotspots",
        domain: "traffic",
        unit: "điểm",
        per: Quarterly,
        dir: LOWER,
        owner: "so-gtvt",
        want: Want::G,
        latest: 11.0,
        slope: -1.0,
        noise: 0.05,
        lo: 1.0,
        ..DEFAULT
    },
    // --- public order ---------------------------------------------------------
    Spec {
        code: "order-criminal-offences",
        name: "Số vụ phạm pháp hình sự",
        name_en: "Criminal offences",
        domain: "public-order",
        unit: "vụ",
        dir: LOWER,
        owner: "cong-an-tinh",
        headline: true,
        want: Want::G,
        latest: 165.0,
        growth: -0.06,
        noise: 0.1,
        split: Split::Sum,
        ..DEFAULT
    },
    Spec {
        code: "order-clearance-rate",
        name: "Tỷ lệ điều tra làm rõ án hình sự",
        name_en: "Criminal cases cleared",
        domain: "public-order",
        unit: "%",
        per: Quarterly,
        owner: "cong-an-tinh",
        thresholds: ratio(1.0, 0.95),
        want: Want::G,
        latest: 86.5,
        slope: 0.6,
        noise: 0.01,
        hi: 100.0,
        decimals: 1,
        ..DEFAULT
    },
    Spec {
        code: "order-fires",
        name: "Số vụ cháy",
        name_en: "Fires",
        domain: "public-order",
        unit: "vụ",
        dir: LOWER,
        owner: "cong-an-tinh",
        want: Want::R,
        latest: 17.0,
        season: DRY,
        noise: 0.25,
        split: Split::Sum,
        ..DEFAULT
    },
    // --- environment ------------------------------------------------------------
    Spec {
        code: "env-aqi-daily",
        name: "Chỉ số chất lượng không khí (AQI) trung bình ngày",
        name_en: "Daily mean air quality index",
        domain: "environment",
        unit: "AQI",
        per: Daily,
        dir: LOWER,
        owner: "so-tn-mt",
        headline: true,
        thresholds: absolute(50.0, 100.0),
        want: Want::A,
        latest: 74.0,
        season: DRY,
        noise: 0.15,
        series: Some(("AirQualityObserved", "aqi", Agg::Avg)),
        ..DEFAULT
    },
    Spec {
        code: "env-pm25-monthly",
        name: "Nồng độ bụi PM2.5 trung bình tháng",
        name_en: "Monthly mean PM2.5 concentration",
        domain: "environment",
        unit: "µg/m³",
        dir: LOWER,
        owner: "so-tn-mt",
        thresholds: absolute(25.0, 50.0),
        want: Want::G,
        latest: 23.5,
        season: DRY,
        noise: 0.08,
        decimals: 1,
        split: Split::Rate(4.0),
        ..DEFAULT
    },
    Spec {
        code: "env-urban-wastewater-treated",
        name: "Tỷ lệ nước thải sinh hoạt đô thị được thu gom, xử lý",
        name_en: "Urban wastewater collected and treated",
        domain: "environment",
        unit: "%",
        per: Yearly,
        owner: "so-tn-mt",
        want: Want::A,
        latest: 46.0,
        slope: 2.5,
        noise: 0.01,
        decimals: 1,
        ..DEFAULT
    },
    Spec {
        code: "env-solid-waste-treated",
        name: "Tỷ lệ chất thải rắn sinh hoạt được thu gom, xử lý",
        name_en: "Household solid waste collected and treated",
        domain: "environment",
        unit: "%",
        per: Quarterly,
        owner: "so-tn-mt",
        thresholds: ratio(1.0, 0.98),
        want: Want::G,
        latest: 99.8,
        slope: 0.1,
        noise: 0.001,
        hi: 100.0,
        decimals: 1,
        ..DEFAULT
    },
    // --- water ----------------------------------------------------------------
    Spec {
        code: "water-saigon-wqi",
        name: "Chỉ số chất lượng nước (WQI) sông Sài Gòn",
        name_en: "Water quality index of the Saigon River",
        domain: "water",
        unit: "WQI",
        owner: "so-tn-mt",
        headline: true,
        thresholds: absolute(76.0, 51.0),
        want: Want::A,
        latest: 68.0,
        noise: 0.06,
        hi: 100.0,
        ..DEFAULT
    },
    Spec {
        code: "water-urban-clean-water",
        name: "Tỷ lệ dân cư đô thị sử dụng nước sạch",
        name_en: "Urban residents with clean piped water",
        domain: "water",
        unit: "%",
        per: Yearly,
        owner: "so-xay-dung",
        thresholds: ratio(1.0, 0.98),
        want: Want::G,
        latest: 99.7,
        slope: 0.3,
        noise: 0.002,
        hi: 100.0,
        decimals: 1,
        ..DEFAULT
    },
    Spec {
        code: "water-tdm-peak-level",
        name: "Mực nước cao nhất tháng tại trạm Thủ Dầu Một",
        name_en: "Monthly peak water level at the Thu Dau Mot gauge",
        domain: "water",
        unit: "m",
        dir: LOWER,
        owner: "so-tn-mt",
        thresholds: absolute(1.4, 1.6),
        want: Want::R,
        latest: 1.68,
        season: TIDES,
        noise: 0.03,
        decimals: 2,
        ..DEFAULT
    },
    // --- administrative procedures ------------------------------------------------
    Spec {
        code: "admin-dossiers-online",
        name: "Tỷ lệ hồ sơ thủ tục hành chính được tiếp nhận, xử lý trực tuyến",
        name_en: "Administrative dossiers received and handled online",
        domain: "admin-procedures",
        unit: "%",
        owner: "tt-phvhcc",
        headline: true,
        thresholds: ratio(1.0, 0.97),
        want: Want::G,
        target: 99.0,
        latest: 99.3,
        slope: 0.1,
        noise: 0.002,
        hi: 100.0,
        decimals: 1,
        ..DEFAULT
    },
    Spec {
        code: "admin-dossiers-on-time",
        name: "Tỷ lệ hồ sơ thủ tục hành chính giải quyết đúng hạn",
        name_en: "Administrative dossiers resolved on time",
        domain: "admin-procedures",
        unit: "%",
        owner: "tt-phvhcc",
        thresholds: ratio(1.0, 0.97),
        want: Want::A,
        latest: 96.4,
        slope: 0.3,
        noise: 0.005,
        hi: 100.0,
        decimals: 1,
        split: Split::Rate(1.5),
        ..DEFAULT
    },
    Spec {
        code: "admin-sipas",
        name: "Chỉ số hài lòng của người dân, tổ chức (SIPAS)",
        name_en: "Satisfaction with public administrative services (SIPAS)",
        domain: "admin-procedures",
        unit: "%",
        per: Yearly,
        owner: "tt-phvhcc",
        want: Want::G,
        latest: 86.9,
        slope: 0.8,
        noise: 0.005,
        hi: 100.0,
        decimals: 1,
        ..DEFAULT
    },
    // --- investment -------------------------------------------------------------
    Spec {
        code: "fdi-projects",
        name: "Số dự án FDI còn hiệu lực (lũy kế)",
        name_en: "Active FDI projects (cumulative)",
        domain: "investment",
        unit: "dự án",
        per: Yearly,
        owner: "so-kh-dt",
        headline: true,
        want: Want::G,
        knots: &[
            (2012.5, 2_300.0),
            (2014.5, 2_600.0),
            (2017.5, 3_350.0),
            (2021.5, 4_049.0),
            (2022.5, 4_190.0),
            (2023.5, 4_330.0),
            (2024.5, 4_470.0),
            (2025.5, 4_600.0),
        ],
        noise: 0.0,
        notes: &[("2021", FDI_NOTE)],
        ..DEFAULT
    },
    Spec {
        code: "fdi-registered-capital",
        name: "Vốn FDI đăng ký (lũy kế)",
        name_en: "Registered FDI capital (cumulative)",
        domain: "investment",
        unit: "tỷ USD",
        per: Yearly,
        owner: "so-kh-dt",
        want: Want::A,
        knots: &[
            (2012.5, 19.5),
            (2014.5, 23.0),
            (2017.5, 30.5),
            (2020.5, 36.9),
            (2021.5, 39.55),
            (2022.5, 40.6),
            (2023.5, 41.6),
            (2024.5, 42.9),
            (2025.5, 44.1),
        ],
        noise: 0.0,
        decimals: 2,
        notes: &[("2021", FDI_NOTE)],
        ..DEFAULT
    },
    Spec {
        code: "fdi-capital-year",
        name: "Vốn FDI thu hút trong năm",
        name_en: "FDI attracted during the year",
        domain: "investment",
        unit: "tỷ USD",
        per: Yearly,
        owner: "so-kh-dt",
        want: Want::R,
        knots: &[
            (2012.5, 1.6),
            (2014.5, 1.9),
            (2016.5, 2.2),
            (2018.5, 2.1),
            (2019.5, 1.7),
            (2020.5, 1.4),
            (2021.5, 2.6),
            (2022.5, 1.4),
            (2023.5, 1.2),
            (2024.5, 1.6),
            (2025.5, 1.5),
        ],
        noise: 0.0,
        decimals: 2,
        notes: &[("2021", "Năm 2021 thu hút 2,6 tỷ USD vốn FDI")],
        ..DEFAULT
    },
    Spec {
        code: "fdi-countries",
        name: "Số quốc gia, vùng lãnh thổ có dự án FDI",
        name_en: "Countries and territories with FDI projects",
        domain: "investment",
        unit: "quốc gia",
        per: Yearly,
        owner: "so-kh-dt",
        want: Want::G,
        knots: &[
            (2012.5, 47.0),
            (2014.5, 50.0),
            (2018.5, 59.0),
            (2021.5, 65.0),
            (2025.5, 68.0),
        ],
        noise: 0.0,
        notes: &[("2021", FDI_NOTE)],
        ..DEFAULT
    },
    Spec {
        code: "investment-new-enterprises",
        name: "Số doanh nghiệp thành lập mới",
        name_en: "Newly registered enterprises",
        domain: "investment",
        unit: "doanh nghiệp",
        owner: "so-kh-dt",
        want: Want::A,
        latest: 520.0,
        growth: 0.03,
        noise: 0.12,
        split: Split::Sum,
        ..DEFAULT
    },
    // --- economy ----------------------------------------------------------------
    Spec {
        code: "econ-grdp-growth",
        name: "Tốc độ tăng trưởng tổng sản phẩm trên địa bàn (GRDP)",
        name_en: "GRDP growth",
        domain: "economy",
        unit: "%",
        per: Quarterly,
        headline: true,
        want: Want::A,
        target: 10.0,
        latest: 9.3,
        noise: 0.0,
        jitter: 0.6,
        lo: -5.0,
        decimals: 2,
        ..DEFAULT
    },
    Spec {
        code: "econ-urbanisation",
        name: "Tỷ lệ đô thị hóa",
        name_en: "Urbanisation rate",
        domain: "economy",
        unit: "%",
        per: Yearly,
        owner: "so-xay-dung",
        want: Want::G,
        knots: &[
            (2012.5, 75.0),
            (2014.5, 76.5),
            (2018.5, 80.1),
            (2020.5, 82.0),
            (2021.5, 84.2),
            (2022.5, 85.1),
            (2025.5, 86.2),
        ],
        noise: 0.0,
        decimals: 1,
        notes: &[("2022", "Tỷ lệ đô thị hóa trên 85%")],
        ..DEFAULT
    },
    Spec {
        code: "econ-retail-sales",
        name: "Tổng mức bán lẻ hàng hóa và doanh thu dịch vụ tiêu dùng",
        name_en: "Retail sales of goods and consumer services",
        domain: "economy",
        unit: "tỷ đồng",
        owner: "so-cong-thuong",
        want: Want::G,
        latest: 27_500.0,
        growth: 0.11,
        season: TET,
        noise: 0.03,
        ..DEFAULT
    },
    Spec {
        code: "econ-exports",
        name: "Kim ngạch xuất khẩu",
        name_en: "Export turnover",
        domain: "economy",
        unit: "triệu USD",
        owner: "so-cong-thuong",
        want: Want::A,
        latest: 3_050.0,
        growth: 0.08,
        noise: 0.06,
        ..DEFAULT
    },
    // --- finance and budget ---------------------------------------------------------
    Spec {
        code: "budget-revenue",
        name: "Thu ngân sách nhà nước trên địa bàn",
        name_en: "State budget revenue collected in the province",
        domain: "finance-budget",
        unit: "tỷ đồng",
        owner: "so-tai-chinh",
        headline: true,
        want: Want::G,
        latest: 5_600.0,
        growth: 0.07,
        noise: 0.1,
        ..DEFAULT
    },
    Spec {
        code: "budget-investment-disbursement",
        name: "Tỷ lệ giải ngân vốn đầu tư công",
        name_en: "Public investment disbursed (share of the annual plan)",
        domain: "finance-budget",
        unit: "%",
        per: Yearly,
        owner: "so-tai-chinh",
        want: Want::R,
        target: 95.0,
        latest: 78.5,
        noise: 0.06,
        hi: 100.0,
        decimals: 1,
        ..DEFAULT
    },
    Spec {
        code: "budget-tax-arrears",
        name: "Tổng số nợ thuế",
        name_en: "Tax arrears",
        domain: "finance-budget",
        unit: "tỷ đồng",
        per: Quarterly,
        dir: LOWER,
        owner: "so-tai-chinh",
        want: Want::A,
        latest: 4_150.0,
        growth: 0.05,
        noise: 0.06,
        ..DEFAULT
    },
    // --- industry -----------------------------------------------------------------
    Spec {
        code: "industry-iip-yoy",
        name: "Chỉ số sản xuất công nghiệp (IIP) so với cùng kỳ",
        name_en: "Industrial production index, on a year earlier",
        domain: "industry",
        unit: "%",
        owner: "so-cong-thuong",
        headline: true,
        want: Want::G,
        target: 108.5,
        latest: 109.4,
        noise: 0.0,
        jitter: 1.5,
        lo: 90.0,
        decimals: 1,
        ..DEFAULT
    },
    Spec {
        code: "industry-park-occupancy",
        name: "Tỷ lệ lấp đầy các khu công nghiệp",
        name_en: "Industrial park occupancy",
        domain: "industry",
        unit: "%",
        per: Quarterly,
        owner: "ban-ql-kcn",
        thresholds: ratio(1.0, 0.95),
        want: Want::G,
        latest: 91.2,
        slope: 0.8,
        noise: 0.003,
        hi: 100.0,
        decimals: 1,
        ..DEFAULT
    },
    Spec {
        code: "industry-park-workers",
        name: "Số lao động làm việc trong các khu công nghiệp",
        name_en: "Workers in industrial parks",
        domain: "industry",
        unit: "người",
        per: Quarterly,
        owner: "ban-ql-kcn",
        want: Want::A,
        latest: 395_000.0,
        growth: 0.03,
        noise: 0.015,
        decimals: -2,
        ..DEFAULT
    },
    // --- agriculture ----------------------------------------------------------------
    Spec {
        code: "agri-rubber-output",
        name: "Sản lượng mủ cao su",
        name_en: "Natural rubber output",
        domain: "agriculture",
        unit: "tấn",
        per: Quarterly,
        owner: "so-nn-ptnt",
        headline: true,
        want: Want::G,
        latest: 72_000.0,
        growth: 0.01,
        season: RUBBER,
        noise: 0.04,
        decimals: -2,
        ..DEFAULT
    },
    Spec {
        code: "agri-pig-herd",
        name: "Tổng đàn heo",
        name_en: "Pig herd",
        domain: "agriculture",
        unit: "nghìn con",
        per: Quarterly,
        owner: "so-nn-ptnt",
        want: Want::A,
        latest: 1_020.0,
        growth: 0.03,
        noise: 0.03,
        ..DEFAULT
    },
    Spec {
        code: "agri-high-tech-share",
        name: "Tỷ trọng giá trị sản xuất nông nghiệp ứng dụng công nghệ cao",
        name_en: "Share of farm output from high-tech agriculture",
        domain: "agriculture",
        unit: "%",
        per: Yearly,
        owner: "so-nn-ptnt",
        want: Want::R,
        latest: 33.5,
        slope: 1.8,
        noise: 0.01,
        decimals: 1,
        ..DEFAULT
    },
    // --- energy -------------------------------------------------------------------
    Spec {
        code: "energy-outages",
        name: "Số sự cố mất điện lưới trung thế",
        name_en: "Medium-voltage power outages",
        domain: "energy",
        unit: "vụ",
        dir: LOWER,
        owner: "dien-luc",
        headline: true,
        want: Want::A,
        latest: 27.0,
        season: RAINY,
        noise: 0.2,
        split: Split::Sum,
        ..DEFAULT
    },
    Spec {
        code: "energy-sales",
        name: "Điện thương phẩm",
        name_en: "Electricity sold",
        domain: "energy",
        unit: "triệu kWh",
        owner: "dien-luc",
        want: Want::G,
        latest: 1_640.0,
        growth: 0.08,
        season: HEAT,
        noise: 0.03,
        ..DEFAULT
    },
    Spec {
        code: "energy-saidi",
        name: "Thời gian mất điện bình quân của khách hàng (SAIDI)",
        name_en: "System average interruption duration (SAIDI)",
        domain: "energy",
        unit: "phút",
        per: Quarterly,
        dir: LOWER,
        owner: "dien-luc",
        want: Want::G,
        latest: 58.0,
        growth: -0.08,
        noise: 0.12,
        ..DEFAULT
    },
    // --- urban --------------------------------------------------------------------
    Spec {
        code: "urban-social-housing",
        name: "Số căn nhà ở xã hội hoàn thành",
        name_en: "Social housing units completed",
        domain: "urban",
        unit: "căn",
        per: Yearly,
        owner: "so-xay-dung",
        headline: true,
        want: Want::R,
        latest: 6_300.0,
        growth: 0.1,
        noise: 0.15,
        ..DEFAULT
    },
    Spec {
        code: "urban-building-permits",
        name: "Số giấy phép xây dựng được cấp",
        name_en: "Building permits issued",
        domain: "urban",
        unit: "giấy phép",
        owner: "so-xay-dung",
        want: Want::A,
        latest: 930.0,
        growth: 0.02,
        noise: 0.12,
        split: Split::Sum,
        ..DEFAULT
    },
    Spec {
        code: "urban-green-space",
        name: "Diện tích cây xanh công cộng bình quân đầu người",
        name_en: "Public green space per inhabitant",
        domain: "urban",
        unit: "m²/người",
        per: Yearly,
        owner: "so-xay-dung",
        want: Want::A,
        latest: 5.6,
        slope: 0.2,
        noise: 0.01,
        decimals: 1,
        ..DEFAULT
    },
    // --- culture and tourism ----------------------------------------------------------
    Spec {
        code: "tourism-visitors",
        name: "Lượt khách du lịch",
        name_en: "Tourist visits",
        domain: "tourism-culture",
        unit: "lượt",
        owner: "so-vh-tt-dl",
        headline: true,
        want: Want::G,
        latest: 455_000.0,
        growth: 0.09,
        season: TOURISM,
        noise: 0.05,
        decimals: -2,
        ..DEFAULT
    },
    Spec {
        code: "tourism-revenue",
        name: "Doanh thu du lịch",
        name_en: "Tourism revenue",
        domain: "tourism-culture",
        unit: "tỷ đồng",
        per: Quarterly,
        owner: "so-vh-tt-dl",
        want: Want::A,
        latest: 1_850.0,
        growth: 0.1,
        noise: 0.05,
        ..DEFAULT
    },
    Spec {
        code: "culture-cultured-families",
        name: "Tỷ lệ hộ gia đình đạt danh hiệu “Gia đình văn hóa”",
        name_en: "Households recognised as “cultured families”",
        domain: "tourism-culture",
        unit: "%",
        per: Yearly,
        owner: "so-vh-tt-dl",
        thresholds: ratio(1.0, 0.97),
        want: Want::G,
        latest: 96.8,
        slope: 0.2,
        noise: 0.002,
        hi: 100.0,
        decimals: 1,
        ..DEFAULT
    },
    // --- digital transformation ---------------------------------------------------------
    Spec {
        code: "digital-economy-share",
        name: "Tỷ trọng kinh tế số trong GRDP",
        name_en: "Digital economy share of GRDP",
        domain: "digital",
        unit: "%",
        per: Yearly,
        owner: "so-tt-tt",
        want: Want::R,
        latest: 14.2,
        slope: 1.1,
        noise: 0.01,
        decimals: 1,
        ..DEFAULT
    },
    Spec {
        code: "digital-vneid-level2",
        name: "Tỷ lệ người dân có tài khoản định danh điện tử mức 2",
        name_en: "Residents with a level-2 electronic identity (VNeID)",
        domain: "digital",
        unit: "%",
        owner: "cong-an-tinh",
        headline: true,
        want: Want::A,
        latest: 78.5,
        slope: 18.0,
        noise: 0.01,
        lo: 5.0,
        hi: 100.0,
        decimals: 1,
        ..DEFAULT
    },
    Spec {
        code: "digital-fibre-households",
        name: "Tỷ lệ hộ gia đình có kết nối Internet cáp quang",
        name_en: "Households with fibre broadband",
        domain: "digital",
        unit: "%",
        per: Quarterly,
        owner: "so-tt-tt",
        want: Want::G,
        latest: 92.5,
        slope: 1.5,
        noise: 0.004,
        hi: 100.0,
        decimals: 1,
        ..DEFAULT
    },
    Spec {
        code: "digital-online-payments",
        name: "Tỷ lệ hồ sơ thủ tục hành chính thanh toán trực tuyến",
        name_en: "Administrative dossiers with fees paid online",
        domain: "digital",
        unit: "%",
        owner: "tt-phvhcc",
        want: Want::A,
        latest: 48.5,
        slope: 6.0,
        noise: 0.02,
        lo: 5.0,
        hi: 100.0,
        decimals: 1,
        ..DEFAULT
    },
    // --- citizen feedback --------------------------------------------------------------
    Spec {
        code: "feedback-resolved-on-time",
        name: "Tỷ lệ phản ánh hiện trường được xử lý đúng hạn",
        name_en: "Citizen reports resolved on time",
        domain: "public-feedback",
        unit: "%",
        owner: "so-tt-tt",
        headline: true,
        thresholds: ratio(1.0, 0.95),
        want: Want::A,
        latest: 92.6,
        slope: 0.5,
        noise: 0.01,
        hi: 100.0,
        decimals: 1,
        split: Split::Rate(3.0),
        ..DEFAULT
    },
    Spec {
        code: "feedback-reports-received",
        name: "Số phản ánh hiện trường tiếp nhận",
        name_en: "Citizen reports received",
        domain: "public-feedback",
        unit: "phản ánh",
        dir: LOWER,
        owner: "so-tt-tt",
        want: Want::G,
        latest: 2_350.0,
        growth: 0.1,
        noise: 0.08,
        split: Split::Sum,
        ..DEFAULT
    },
    Spec {
        code: "feedback-satisfaction",
        name: "Tỷ lệ người dân hài lòng với kết quả xử lý phản ánh",
        name_en: "Citizens satisfied with how their report was handled",
        domain: "public-feedback",
        unit: "%",
        per: Quarterly,
        owner: "so-tt-tt",
        thresholds: ratio(1.0, 0.95),
        want: Want::G,
        latest: 91.3,
        slope: 0.7,
        noise: 0.006,
        hi: 100.0,
        decimals: 1,
        ..DEFAULT
    },
    // --- disaster prevention --------------------------------------------------------------
    Spec {
        code: "disaster-urban-flood-points",
        name: "Số điểm ngập úng đô thị",
        name_en: "Urban flooding hotspots",
        domain: "disaster",
        unit: "điểm",
        dir: LOWER,
        owner: "bch-pctt-tkcn",
        headline: true,
        want: Want::R,
        latest: 26.0,
        season: RAINY,
        noise: 0.15,
        split: Split::Sum,
        ..DEFAULT
    },
    Spec {
        code: "disaster-damage",
        name: "Giá trị thiệt hại do thiên tai",
        name_en: "Damage from natural disasters",
        domain: "disaster",
        unit: "tỷ đồng",
        per: Quarterly,
        dir: LOWER,
        owner: "bch-pctt-tkcn",
        want: Want::G,
        latest: 9.5,
        season: RAINY,
        noise: 0.3,
        decimals: 1,
        ..DEFAULT
    },
    Spec {
        code: "disaster-riverbank-erosion",
        name: "Số điểm sạt lở bờ sông",
        name_en: "Riverbank erosion sites",
        domain: "disaster",
        unit: "điểm",
        per: Yearly,
        dir: LOWER,
        owner: "bch-pctt-tkcn",
        want: Want::A,
        latest: 9.0,
        slope: 0.3,
        noise: 0.1,
        lo: 1.0,
        ..DEFAULT
    },
];

/// The periods an indicator of `per` has values for, oldest first, the
/// latest complete one last (`today` is the local date).
pub(crate) fn periods(per: Periodicity, today: NaiveDate) -> Vec<Period> {
    let (y, m) = (today.year(), today.month());
    match per {
        Periodicity::Monthly => {
            // The month before this one, back to January 2024 (at least two years).
            let latest = y * 12 + m as i32 - 2;
            let first = (2024 * 12).min(latest - 23);
            (first..=latest)
                .map(|i| Period::Month(i.div_euclid(12), (i.rem_euclid(12) + 1) as u32))
                .collect()
        }
        Periodicity::Quarterly => {
            let latest = y * 4 + ((m as i32 - 1) / 3) - 1;
            (latest - 15..=latest)
                .map(|i| Period::Quarter(i.div_euclid(4), (i.rem_euclid(4) + 1) as u32))
                .collect()
        }
        Periodicity::Yearly => (y - 12..y).map(Period::Year).collect(),
        Periodicity::Daily | Periodicity::RealTime => (1..=366u64)
            .rev()
            .filter_map(|d| today.checked_sub_days(Days::new(d)))
            .map(Period::Day)
            .collect(),
    }
}

/// The middle of a period as a decimal year.
fn decimal_year(p: &Period) -> f64 {
    match *p {
        Period::Year(y) => f64::from(y) + 0.5,
        Period::Quarter(y, q) => f64::from(y) + (f64::from(q) - 0.5) / 4.0,
        Period::Month(y, m) => f64::from(y) + (f64::from(m) - 0.5) / 12.0,
        Period::Day(d) => f64::from(d.year()) + (f64::from(d.ordinal()) - 0.5) / 365.25,
    }
}

fn season_of(table: &[f64; 12], p: &Period) -> f64 {
    let month = |m: u32| {
        table
            .get((m as usize).saturating_sub(1))
            .copied()
            .unwrap_or(1.0)
    };
    match *p {
        Period::Year(_) => 1.0,
        Period::Quarter(_, q) => (month(3 * q - 2) + month(3 * q - 1) + month(3 * q)) / 3.0,
        Period::Month(_, m) => month(m),
        Period::Day(d) => month(d.month()),
    }
}

fn interpolate(knots: &[(f64, f64)], t: f64) -> f64 {
    match knots {
        [] => 0.0,
        [(_, v)] => *v,
        _ => {
            // Find the segment, extending the first or last one beyond the ends.
            let i = knots
                .windows(2)
                .position(|w| matches!(w, [_, b] if t <= b.0))
                .unwrap_or(knots.len() - 2);
            let (a, b) = (knots[i], knots[i + 1]);
            if b.0 == a.0 {
                a.1
            } else {
                a.1 + (b.1 - a.1) * (t - a.0) / (b.0 - a.0)
            }
        }
    }
}

fn round_to(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

impl Spec {
    fn indicator(&self) -> Indicator {
        let agency = AGENCIES
            .iter()
            .find(|(c, _, _)| *c == self.owner)
            .map_or("", |(_, n, _)| *n);
        let source = if self.notes.is_empty() {
            format!("{agency} (số liệu minh họa cho bản demo)")
        } else {
            format!("{agency} (số liệu minh họa; các mốc có ghi chú là số liệu đã công bố)")
        };
        Indicator {
            code: self.code.into(),
            name: self.name.into(),
            name_en: self.name_en.into(),
            domain: self.domain.into(),
            unit: self.unit.into(),
            periodicity: self.per,
            direction: self.dir,
            targets: BTreeMap::new(),
            thresholds: self.thresholds,
            owner_agency: Some(self.owner.into()),
            computation: match self.series {
                Some((entity_type, attribute, agg)) => Computation::FromSeries {
                    entity_type: entity_type.into(),
                    attribute: attribute.into(),
                    agg,
                },
                None => Computation::Submitted,
            },
            source: Some(source),
            headline: self.headline,
        }
    }

    /// The province value at `p` before district splitting.
    fn value_at(&self, seed: u64, p: &Period, latest: &Period) -> f64 {
        let (t, t_latest) = (decimal_year(p), decimal_year(latest));
        let level = if self.knots.is_empty() {
            let dt = t - t_latest;
            (self.latest + self.slope * dt) * (1.0 + self.growth).powf(dt)
        } else {
            interpolate(self.knots, t)
        };
        let season = season_of(&self.season, p) / season_of(&self.season, latest).max(1e-9);
        let (n1, n2) = if p == latest {
            (0.0, 0.0)
        } else {
            let key = str_hash(self.code) ^ str_hash(&p.to_string());
            (signed(hash3(seed, key, 1)), signed(hash3(seed, key, 2)))
        };
        let v = level * season * (1.0 + self.noise * n1) + self.jitter * n2;
        round_to(v.clamp(self.lo, self.hi), self.decimals)
    }
}

/// Population weights of the districts, varied per indicator.
fn district_weights(seed: u64, code: &str) -> Vec<f64> {
    let raw: Vec<f64> = DISTRICTS
        .iter()
        .enumerate()
        .map(|(d, def)| {
            def.population * (1.0 + 0.3 * signed(hash3(seed, str_hash(code), d as u64 + 100)))
        })
        .collect();
    let total: f64 = raw.iter().sum();
    raw.into_iter().map(|w| w / total.max(1e-9)).collect()
}

/// Indicators and their values.
pub(crate) struct Catalogue {
    pub indicators: Vec<Indicator>,
    pub values: Vec<(String, IndicatorValueInput)>,
}

/// Builds every indicator with its targets and history up to `today`.
pub(crate) fn catalogue(seed: u64, today: NaiveDate) -> Catalogue {
    let mut indicators = Vec::with_capacity(SPECS.len());
    let mut values = Vec::new();
    for spec in SPECS {
        let (ind, vals) = build_one(spec, seed, today);
        indicators.push(ind);
        values.extend(vals);
    }
    Catalogue { indicators, values }
}

fn build_one(
    spec: &Spec,
    seed: u64,
    today: NaiveDate,
) -> (Indicator, Vec<(String, IndicatorValueInput)>) {
    let mut ind = spec.indicator();
    let periods = periods(spec.per, today);
    let Some(latest) = periods.last().copied() else {
        return (ind, Vec::new());
    };
    let weights = district_weights(seed, spec.code);
    // (period, province value, district values)
    let mut rows: Vec<(Period, f64, Vec<f64>)> = Vec::with_capacity(periods.len());
    for p in &periods {
        let v = spec.value_at(seed, p, &latest);
        let key = str_hash(spec.code) ^ str_hash(&p.to_string());
        let (province, districts) = match spec.split {
            Split::None => (v, Vec::new()),
            Split::Sum => {
                let ds: Vec<f64> = weights
                    .iter()
                    .enumerate()
                    .map(|(d, w)| {
                        let n = if *p == latest {
                            0.0
                        } else {
                            signed(hash3(seed, key, d as u64 + 10))
                        };
                        round_to(
                            (v * w * (1.0 + 1.5 * spec.noise * n)).max(0.0),
                            spec.decimals,
                        )
                    })
                    .collect();
                (round_to(ds.iter().sum(), spec.decimals), ds)
            }
            Split::Rate(spread) => {
                let ds = (0..DISTRICTS.len())
                    .map(|d| {
                        let offset =
                            spread * signed(hash3(seed, str_hash(spec.code), d as u64 + 200));
                        let wobble = 0.3 * spread * signed(hash3(seed, key, d as u64 + 10));
                        round_to((v + offset + wobble).clamp(spec.lo, spec.hi), spec.decimals)
                    })
                    .collect();
                (v, ds)
            }
        };
        rows.push((*p, province, districts));
    }

    ind.targets = targets(spec, seed, &ind, &rows, &latest, today.year());

    let submitted_by = format!("user:{}", officer_name(spec.owner));
    let mut out = Vec::with_capacity(rows.len() * (1 + DISTRICTS.len()));
    for (p, province, districts) in rows {
        let label = p.to_string();
        let status = Some(if p == latest {
            ValueStatus::Provisional
        } else {
            ValueStatus::Final
        });
        let note = spec
            .notes
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, n)| (*n).to_string());
        out.push((
            submitted_by.clone(),
            IndicatorValueInput {
                indicator: spec.code.into(),
                period: label.clone(),
                admin_unit: PROVINCE.into(),
                value: province,
                status,
                note,
            },
        ));
        for (d, v) in districts.into_iter().enumerate() {
            if let Some(def) = DISTRICTS.get(d) {
                out.push((
                    submitted_by.clone(),
                    IndicatorValueInput {
                        indicator: spec.code.into(),
                        period: label.clone(),
                        admin_unit: def.code.into(),
                        value: v,
                        status,
                        note: None,
                    },
                ));
            }
        }
    }
    (ind, out)
}

/// Plan targets for every year of the history and the current year.
fn targets(
    spec: &Spec,
    seed: u64,
    ind: &Indicator,
    rows: &[(Period, f64, Vec<f64>)],
    latest: &Period,
    this_year: i32,
) -> BTreeMap<i32, f64> {
    let mut by_year: BTreeMap<i32, Vec<f64>> = BTreeMap::new();
    for (p, v, _) in rows {
        by_year.entry(p.year()).or_default().push(*v);
    }
    let latest_year = latest.year();
    let latest_value = rows.last().map_or(0.0, |r| r.1);
    let higher = spec.dir == Direction::HigherIsBetter;
    let step = 10f64.powi(-spec.decimals);
    let mut out = BTreeMap::new();
    let fixed = match spec.thresholds {
        Thresholds::Absolute { green, .. } => Some(green),
        Thresholds::TargetRatio { .. } if spec.target != 0.0 => Some(spec.target),
        Thresholds::TargetRatio { .. } => None,
    };
    if let Some(t) = fixed {
        for y in by_year.keys().copied().chain([this_year]) {
            out.insert(y, t);
        }
        return out;
    }
    let Thresholds::TargetRatio { green, amber } = spec.thresholds else {
        return out;
    };
    for (y, vs) in &by_year {
        let (base, a) = if *y == latest_year {
            let a = match spec.want {
                Want::G => green + 0.01,
                Want::A => (green + amber) / 2.0,
                Want::R => amber - 0.05,
            };
            (latest_value, a)
        } else {
            // Past years: plans met, nearly met, or missed by a little.
            let mean = vs.iter().sum::<f64>() / vs.len().max(1) as f64;
            (
                mean,
                1.0 + 0.04 * signed(hash3(seed, str_hash(spec.code), *y as u64)),
            )
        };
        let t = if higher { base / a } else { base * a };
        let mut t = round_to(t, spec.decimals.max(0) + 1);
        if *y == latest_year {
            t = nudge(ind, spec.want.status(), latest_value, *y, t, step / 10.0);
        }
        out.insert(*y, t);
    }
    // Plans for the years after the latest value (the current year).
    let mut last = out.get(&latest_year).copied().unwrap_or(latest_value);
    for y in latest_year + 1..=this_year {
        last = round_to(
            last * (1.0 + spec.growth) + spec.slope,
            spec.decimals.max(0) + 1,
        );
        out.insert(y, last);
    }
    out
}

/// Moves a rounded target by small steps until the latest value has the
/// wanted status (rounding can push a value across a bound).
fn nudge(
    ind: &Indicator,
    want: IndicatorStatus,
    value: f64,
    year: i32,
    target: f64,
    step: f64,
) -> f64 {
    let mut probe = ind.clone();
    for k in 0..1000 {
        for t in [target + k as f64 * step, target - k as f64 * step] {
            probe.targets.insert(year, t);
            if probe.status(value, year) == want {
                return t;
            }
        }
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
    }

    #[test]
    fn periods_end_before_today() {
        let m = periods(Periodicity::Monthly, today());
        assert_eq!(m.first(), Some(&Period::Month(2024, 1)));
        assert_eq!(m.last(), Some(&Period::Month(2026, 10)));
        let q = periods(Quarterly, today());
        assert_eq!(q.len(), 16);
        assert_eq!(q.last(), Some(&Period::Quarter(2026, 3)));
        let y = periods(Yearly, today());
        assert_eq!((y.len(), y.last()), (12, Some(&Period::Year(2025))));
        let d = periods(Daily, today());
        assert_eq!(d.len(), 366);
        assert_eq!(
            d.last(),
            Some(&Period::Day(NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()))
        );
        // Early in a year the monthly history still reaches two years back.
        let jan = periods(
            Periodicity::Monthly,
            NaiveDate::from_ymd_opt(2024, 2, 3).unwrap(),
        );
        assert_eq!(jan.len(), 24);
        assert_eq!(jan.last(), Some(&Period::Month(2024, 1)));
    }

    #[test]
    fn every_latest_value_has_its_wanted_status() {
        for d in [
            today(),
            NaiveDate::from_ymd_opt(2025, 1, 5).unwrap(),
            NaiveDate::from_ymd_opt(2027, 6, 30).unwrap(),
        ] {
            for spec in SPECS {
                let (ind, values) = build_one(spec, 74, d);
                let latest = values
                    .iter()
                    .rev()
                    .find(|(_, v)| v.admin_unit == PROVINCE)
                    .unwrap();
                let p = Period::parse(&latest.1.period).unwrap();
                assert_eq!(
                    ind.status(latest.1.value, p.year()),
                    spec.want.status(),
                    "{} on {d}: {}",
                    spec.code,
                    latest.1.value
                );
            }
        }
    }

    #[test]
    fn public_figures_are_kept() {
        let c = catalogue(74, today());
        let v = |code: &str, period: &str| {
            c.values
                .iter()
                .find(|(_, v)| {
                    v.indicator == code && v.period == period && v.admin_unit == PROVINCE
                })
                .map(|(_, v)| v.value)
        };
        assert_eq!(v("fdi-projects", "2021"), Some(4049.0));
        assert_eq!(v("fdi-registered-capital", "2021"), Some(39.55));
        assert_eq!(v("fdi-capital-year", "2021"), Some(2.6));
        assert_eq!(v("fdi-countries", "2021"), Some(65.0));
        assert!(v("econ-urbanisation", "2022").unwrap() > 85.0);
        assert!(v("admin-dossiers-online", "2026-10").unwrap() >= 99.0);
    }

    #[test]
    fn knots_interpolate_and_extend() {
        let k = [(1.0, 10.0), (2.0, 20.0)];
        assert_eq!(interpolate(&k, 1.5), 15.0);
        assert_eq!(interpolate(&k, 3.0), 30.0);
        assert_eq!(interpolate(&k, 0.0), 0.0);
    }
}
