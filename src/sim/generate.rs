//! The simulated register's event stream (DESIGN §3 and §7).
//!
//! A [`Generator`] turns a seed into an endless, deterministic stream of register events:
//! JSON objects as a register would send them, i.e. without the agent-owned fields
//! (`schema`, `event_id`, `idempotency_key`, `store_id`, `source`, `seq`, `received_at`).
//! The demo, the tests and the benchmark all depend on it, so the same
//! seed, profile, register and business day always give a byte-identical stream
//! (`serde_json::to_string` of each event), and the money in it is exact.
//!
//! # Money
//!
//! All amounts are integer minor units (`i64`); quantities are decimal strings.
//!
//! * Prices are **tax-exclusive** in both profiles: `unit_price` and `extended` are net,
//!   tax is added on top, `grand = gross + discounts + tax`.
//! * `extended = round(quantity × unit_price)` computed on the quantity in thousandths,
//!   rounded half away from zero ("half-up" on the magnitude), so a refund of the same
//!   quantity is exactly the negated sale line.
//! * A `discount` line carries a negative `amount` and names the item it reduces in
//!   `applies_to_line`; `totals.discounts` is the sum of those amounts (≤ 0 on a sale).
//! * Each item's `taxes[]` amount is `round(net × rate)` with `net = extended + its
//!   discount`. One `tax` line per rate: `taxable = Σ net`, `amount = Σ item tax amounts`
//!   at that rate, so line taxes and tax lines always agree.
//! * `tendered = Σ tender amounts`, `change` is the `change` line (absent when zero), and
//!   `tendered − change = grand` for every transaction.
//! * `item_count` is signed: the quantity of each `ea` line plus ±1 per weighed line.
//! * A return (`kind: "return"`) has negative quantities, amounts, taxes and tender.
//! * A post-void repeats the voided sale's lines and totals with `status: "voided"`, a
//!   `post_void` link to it, and its card authorisations marked `reversed`.
//!
//! # Edge cases and card numbers
//!
//! Events are planned in aligned blocks of 25: each block holds every edge case of §3 at
//! least once (split tender, partial refund, mixed tax, no-SKU item, line void, post-void,
//! no-sale, training, offline approval), so any 50 consecutive events contain a whole
//! block. Exactly one event in every aligned block of 10 carries a well-known, Luhn-valid
//! test PAN in free text or in a tender's card object, for the redactor to catch; no other
//! field ever holds a Luhn-valid 13–19 digit run (the catalogue's GTINs are chosen to
//! fail Luhn), so the redactor's count can be checked against [`contains_test_pan`].

use std::collections::BTreeMap;
use std::str::FromStr;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

/// Which kind of store the simulated register behaves like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A supermarket lane: EUR, German VAT (0.19 and 0.07), weighed goods.
    Retail,
    /// A table-service restaurant: USD, food and liquor sales tax, modifiers.
    Restaurant,
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "retail" => Ok(Self::Retail),
            "restaurant" => Ok(Self::Restaurant),
            _ => Err(format!(
                "unknown profile {s:?}; expected \"retail\" or \"restaurant\""
            )),
        }
    }
}

/// Events per planning block; any 50 consecutive events contain one whole block.
const BLOCK: usize = 25;
/// One event in every aligned run of this many carries a test PAN.
const PAN_EVERY: u64 = 10;
/// Completed sales remembered as targets for refunds and post-voids.
const HISTORY_CAP: usize = 32;
/// Milliseconds per day, for the simulated clock.
const DAY_MS: i64 = 86_400_000;
/// The register opens at 07:00 UTC of the business day (plus up to ten minutes).
const OPEN_MS: i64 = 7 * 3_600_000;
/// Gap between events: short enough that ~10,000 events stay within the business day.
const STEP_MIN_MS: i64 = 500;
/// Upper bound of the gap between events.
const STEP_MAX_MS: i64 = 6_000;

/// A tax rate of a profile; the rate is in ten-thousandths so it stays exact.
struct TaxRate {
    code: &'static str,
    rate_e4: i64,
}

/// A catalogue article.
struct CatalogItem {
    sku: &'static str,
    gtin: Option<&'static str>,
    description: &'static str,
    department: &'static str,
    price: i64,
    /// Index into the profile's tax rates.
    tax: usize,
    /// Sold by weight (kg, three decimals) instead of by the piece.
    weighted: bool,
    /// Takes kitchen modifiers ("no onions").
    modifiable: bool,
}

/// An open-department key: an item rung up without a SKU.
struct OpenDept {
    department: &'static str,
    description: &'static str,
    min: i64,
    max: i64,
    tax: usize,
}

/// Everything that differs between the profiles.
struct ProfileData {
    tag: u64,
    currency: &'static str,
    taxes: &'static [TaxRate],
    catalog: &'static [CatalogItem],
    open: &'static [OpenDept],
    modifiers: &'static [&'static str],
    operators: &'static [&'static str],
    credit_brands: &'static [&'static str],
    debit_brands: &'static [&'static str],
    /// Tender mix in percent; the rest is credit.
    cash_pct: u64,
    debit_pct: u64,
    mobile_pct: u64,
    split_pct: u64,
    customer_pct: u64,
    max_items: i64,
    float: i64,
    /// Transactions carry the table and covers in `ext` (table service).
    tables: bool,
}

/// Shorthand for the catalogue tables; an empty `gtin` means the article has none.
const fn item(
    sku: &'static str,
    gtin: &'static str,
    description: &'static str,
    department: &'static str,
    price: i64,
    tax: usize,
) -> CatalogItem {
    CatalogItem {
        sku,
        gtin: if gtin.is_empty() { None } else { Some(gtin) },
        description,
        department,
        price,
        tax,
        weighted: false,
        modifiable: false,
    }
}

/// A weighed article (price per kg, no GTIN: weighed goods are keyed by PLU).
const fn weighed(
    sku: &'static str,
    description: &'static str,
    department: &'static str,
    price: i64,
    tax: usize,
) -> CatalogItem {
    CatalogItem {
        weighted: true,
        ..item(sku, "", description, department, price, tax)
    }
}

/// A kitchen dish that takes modifiers.
const fn dish(
    sku: &'static str,
    description: &'static str,
    department: &'static str,
    price: i64,
) -> CatalogItem {
    CatalogItem {
        modifiable: true,
        ..item(sku, "", description, department, price, 0)
    }
}

// One article per line reads like a price list; rustfmt would spread each over 8 lines.
// Retail GTINs carry a correct GS1 check digit and deliberately fail Luhn, so the
// redactor never mistakes one for a 13-digit card number. Tax 0 = "A" 0.19, 1 = "B" 0.07.
#[rustfmt::skip]
static RETAIL_CATALOG: [CatalogItem; 16] = [
    item("100101", "4006383395630", "Whole Milk 1L", "dairy", 119, 1),
    item("100102", "4001239939082", "Rye Bread 500g", "bakery", 249, 1),
    weighed("4011", "Bananas", "produce", 199, 1),
    weighed("4664", "Tomatoes on the Vine", "produce", 349, 1),
    weighed("200201", "Gouda Cheese", "deli", 1490, 1),
    item("100104", "4020004140027", "Coffee Beans 1kg", "grocery", 1299, 1),
    item("100105", "4056786825548", "Orange Juice 1L", "beverages", 189, 0),
    item("100106", "4060000759540", "Mineral Water 6x1.5L", "beverages", 329, 0),
    item("100107", "4071118611682", "Dish Soap 500ml", "household", 179, 0),
    item("100108", "4087655619135", "AA Batteries 4-pack", "electronics", 599, 0),
    item("100109", "4093213834520", "USB-C Cable 1m", "electronics", 999, 0),
    item("100110", "4005556110971", "Toothpaste 75ml", "drugstore", 149, 0),
    item("100111", "4017770608165", "Notebook A5", "stationery", 279, 0),
    item("100112", "4031419538934", "Dark Chocolate 100g", "confectionery", 129, 1),
    item("100113", "4040405320842", "Paperback Novel", "books", 1200, 1),
    item("100114", "4062622251273", "Cotton T-Shirt", "apparel", 1499, 0),
];

// Tax 0 = "FOOD" 0.0875, 1 = "LIQ" 0.1025.
#[rustfmt::skip]
static RESTAURANT_CATALOG: [CatalogItem; 12] = [
    dish("M101", "Cheeseburger", "mains", 1395),
    dish("M102", "Margherita Pizza", "mains", 1600),
    dish("M103", "Fish Tacos", "mains", 1475),
    dish("M104", "Caesar Salad", "salads", 1150),
    dish("M105", "Soup of the Day", "starters", 695),
    dish("M106", "French Fries", "sides", 550),
    item("M107", "", "Cheesecake", "desserts", 850, 0),
    item("M108", "", "Iced Tea", "beverages", 350, 0),
    item("M109", "", "Espresso", "beverages", 375, 0),
    item("B201", "", "Draft IPA", "bar", 800, 1),
    item("B202", "", "House Red Wine", "bar", 1100, 1),
    item("B203", "", "Margarita", "bar", 1300, 1),
];

static RETAIL: ProfileData = ProfileData {
    tag: 0x5245_5441_494c,
    currency: "EUR",
    taxes: &[
        TaxRate {
            code: "A",
            rate_e4: 1900,
        },
        TaxRate {
            code: "B",
            rate_e4: 700,
        },
    ],
    catalog: &RETAIL_CATALOG,
    open: &[
        OpenDept {
            department: "produce",
            description: "Loose produce",
            min: 50,
            max: 600,
            tax: 1,
        },
        OpenDept {
            department: "bakery",
            description: "Bakery counter",
            min: 80,
            max: 450,
            tax: 1,
        },
        OpenDept {
            department: "household",
            description: "Misc non-food",
            min: 100,
            max: 2500,
            tax: 0,
        },
    ],
    modifiers: &[],
    operators: &["op-101", "op-102", "op-107", "op-115"],
    credit_brands: &["visa", "mastercard", "amex"],
    debit_brands: &["girocard", "maestro", "visa"],
    cash_pct: 40,
    debit_pct: 30,
    mobile_pct: 5,
    split_pct: 3,
    customer_pct: 20,
    max_items: 6,
    float: 15_000,
    tables: false,
};

static RESTAURANT: ProfileData = ProfileData {
    tag: 0x5245_5354_4155,
    currency: "USD",
    taxes: &[
        TaxRate {
            code: "FOOD",
            rate_e4: 875,
        },
        TaxRate {
            code: "LIQ",
            rate_e4: 1025,
        },
    ],
    catalog: &RESTAURANT_CATALOG,
    open: &[
        OpenDept {
            department: "kitchen",
            description: "Chef's special",
            min: 900,
            max: 2800,
            tax: 0,
        },
        OpenDept {
            department: "bar",
            description: "Bar open item",
            min: 500,
            max: 1500,
            tax: 1,
        },
    ],
    modifiers: &[
        "no onions",
        "extra cheese",
        "no dairy",
        "well done",
        "sauce on the side",
        "add avocado",
    ],
    operators: &["srv-anna", "srv-ben", "srv-carla", "srv-dev"],
    credit_brands: &["visa", "mastercard", "amex", "discover"],
    debit_brands: &["visa", "mastercard"],
    cash_pct: 20,
    debit_pct: 10,
    mobile_pct: 5,
    split_pct: 3,
    customer_pct: 5,
    max_items: 7,
    float: 20_000,
    tables: true,
};

/// A well-known, Luhn-valid test card number and its brand.
struct TestPan {
    digits: &'static str,
    brand: &'static str,
}

/// Public test PANs from the card schemes' and processors' documentation; never real cards.
const TEST_PANS: &[TestPan] = &[
    TestPan {
        digits: "4111111111111111",
        brand: "visa",
    },
    TestPan {
        digits: "4012888888881881",
        brand: "visa",
    },
    TestPan {
        digits: "5555555555554444",
        brand: "mastercard",
    },
    TestPan {
        digits: "5105105105105100",
        brand: "mastercard",
    },
    TestPan {
        digits: "378282246310005",
        brand: "amex",
    },
    TestPan {
        digits: "371449635398431",
        brand: "amex",
    },
    TestPan {
        digits: "6011111111111117",
        brand: "discover",
    },
    TestPan {
        digits: "6011000990139424",
        brand: "discover",
    },
];

/// The edge cases of DESIGN §3 that every planning block must contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    SplitTender,
    PartialRefund,
    MixedTax,
    NoSku,
    LineVoid,
    PostVoid,
    NoSale,
    Training,
    OfflinePayment,
}

/// All edge cases, in the order they are placed into a block.
const EDGES: [Edge; 9] = [
    Edge::SplitTender,
    Edge::PartialRefund,
    Edge::MixedTax,
    Edge::NoSku,
    Edge::LineVoid,
    Edge::PostVoid,
    Edge::NoSale,
    Edge::Training,
    Edge::OfflinePayment,
];

/// What one position of a planning block produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Random everyday traffic: mostly sales, some drawer, till and operator events.
    Ordinary,
    /// A scheduled edge case.
    Edge(Edge),
    /// The first event of a stream: the operator signs on.
    SignOn,
    /// The second event: the till is opened with its float.
    TillOpen,
    /// A plain completed sale, so refunds and post-voids always have a target.
    PlainSale,
}

/// The event flags; all false unless an edge case sets one.
#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    training: bool,
    offline_payment: bool,
    reprint: bool,
}

/// The item data a line is rung up with.
#[derive(Debug, Clone)]
struct ItemSpec {
    sku: Option<&'static str>,
    gtin: Option<&'static str>,
    description: &'static str,
    department: &'static str,
    unit_price: i64,
    tax: usize,
    weighted: bool,
}

/// A discount on one item.
#[derive(Debug, Clone, Copy)]
enum Discount {
    /// Percent off the item's extended amount.
    Percent(i64, &'static str),
    /// A fixed amount off, capped at half the item's extended amount.
    Fixed(i64, &'static str),
}

impl Discount {
    /// The (negative) discount amount for an item with this extended amount.
    fn amount(self, extended: i64) -> i64 {
        match self {
            Self::Percent(pct, _) => -div_round(i128::from(extended) * i128::from(pct), 100),
            Self::Fixed(off, _) => -off.min(extended / 2),
        }
    }

    /// The text printed on the discount line.
    fn description(self) -> &'static str {
        match self {
            Self::Percent(_, text) | Self::Fixed(_, text) => text,
        }
    }
}

/// Discounts the register hands out now and then.
const DISCOUNTS: [Discount; 4] = [
    Discount::Percent(10, "Promo 10% off"),
    Discount::Percent(20, "Promo 20% off"),
    Discount::Fixed(50, "Coupon"),
    Discount::Fixed(100, "Loyalty reward"),
];

/// One item line (and its discount line, if any) to be assembled into a body.
#[derive(Debug, Clone)]
struct Entry {
    item: ItemSpec,
    /// Signed quantity in thousandths (1000 = one piece or one kg).
    qty_milli: i64,
    /// This line was later voided by another line.
    void: bool,
    /// Index (in the same entry list) of the line this one voids.
    voids: Option<usize>,
    discount: Option<Discount>,
    modifiers: Vec<&'static str>,
}

impl Entry {
    /// An undiscounted, unvoided line.
    fn new(item: ItemSpec, qty_milli: i64) -> Self {
        Self {
            item,
            qty_milli,
            void: false,
            voids: None,
            discount: None,
            modifiers: Vec::new(),
        }
    }
}

/// The card used for a tender, remembered so a refund goes back to the same card.
#[derive(Debug, Clone)]
struct CardInfo {
    tender_type: &'static str,
    brand: &'static str,
    last4: String,
    entry_mode: &'static str,
}

/// How a transaction is paid.
#[derive(Debug, Clone)]
enum TenderPlan {
    Cash,
    Card {
        debit: bool,
        offline: bool,
    },
    Mobile,
    /// Cash for part, a card for the rest.
    Split,
    /// A refund paid out to the original card, or in cash.
    Refund(Option<CardInfo>),
}

/// One tender as paid, kept so a post-void can repeat it.
#[derive(Debug, Clone)]
struct Tender {
    tender_type: &'static str,
    amount: i64,
    card: Option<CardInfo>,
    /// Authorisation status and code, for electronic tenders.
    auth: Option<(&'static str, String)>,
}

/// A completed sale that a later refund or post-void may refer to.
///
/// The body itself is not kept: cloning it for every sale cost a quarter of the
/// generator's time. A post-void rebuilds it from the entries and tenders instead, which
/// is exact because line building draws no random numbers.
#[derive(Debug, Clone)]
struct SaleRecord {
    pos_sequence: u64,
    entries: Vec<Entry>,
    line_numbers: Vec<u64>,
    tenders: Vec<Tender>,
    customer: Option<Value>,
}

/// The item, discount and tax lines of a transaction and their sums.
struct Tally {
    lines: Vec<Value>,
    /// Line number of each entry, in entry order.
    line_numbers: Vec<u64>,
    next_line: u64,
    gross: i64,
    discounts: i64,
    tax: i64,
    item_count: i64,
}

impl Tally {
    /// What the customer owes: tax-exclusive, so tax is added to the discounted gross.
    fn grand(&self) -> i64 {
        self.gross + self.discounts + self.tax
    }
}

/// The random source. Ranges are reduced here rather than with rand's distributions,
/// whose algorithms may change between rand releases; ChaCha8's raw output is portable
/// and stable, so the stream depends on nothing else.
struct Dice(ChaCha8Rng);

impl Dice {
    /// Uniform in `0..n` (0 when `n` is 0), by Lemire's multiply-and-reject method.
    fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = u128::from(self.0.next_u64()) * u128::from(n);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// Uniform in `lo..=hi` (`lo` when the range is empty).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi.abs_diff(lo) + 1) as i64
    }

    /// True with the given probability in percent.
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    /// A uniform index into a slice of this length.
    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// A uniformly chosen element (the slices passed in are never empty).
    fn pick<T: Copy>(&mut self, items: &[T], fallback: T) -> T {
        items
            .get(self.index(items.len()))
            .copied()
            .unwrap_or(fallback)
    }
}

/// Deterministic generator of register events for one register.
pub struct Generator {
    dice: Dice,
    data: &'static ProfileData,
    register_id: String,
    business_day: String,
    /// Simulated register clock, milliseconds since the Unix epoch (UTC).
    clock_ms: i64,
    /// pos_sequence of the last event produced (0 before the first).
    seq: u64,
    operator: &'static str,
    block: [Slot; BLOCK],
    /// Zero-based index of the event that carries this run's test PAN.
    pan_at: u64,
    history: Vec<SaleRecord>,
}

impl Generator {
    /// `seed` fixes the whole stream; `business_day` is "YYYY-MM-DD".
    ///
    /// The register id, the business day and the profile are mixed into the seed, so two
    /// registers with the same seed still differ. A business day that is not a valid
    /// date is passed through verbatim, and the clock then starts on 1970-01-01.
    pub fn new(seed: u64, profile: Profile, register_id: &str, business_day: &str) -> Self {
        let data = match profile {
            Profile::Retail => &RETAIL,
            Profile::Restaurant => &RESTAURANT,
        };
        let mut dice = Dice(ChaCha8Rng::from_seed(stream_seed(
            seed,
            data.tag,
            register_id,
            business_day,
        )));
        let day = parse_day(business_day).unwrap_or(0);
        let clock_ms = day * DAY_MS + OPEN_MS + dice.range(0, 600_000);
        let operator = dice.pick(data.operators, "op-1");
        Self {
            dice,
            data,
            register_id: register_id.to_owned(),
            business_day: business_day.to_owned(),
            clock_ms,
            seq: 0,
            operator,
            block: [Slot::Ordinary; BLOCK],
            pan_at: 0,
            history: Vec::new(),
        }
    }

    /// A till close: the register ends its business day (the end-of-day summary's
    /// explicit trigger). It takes the next `pos_sequence`.
    pub fn close_till(&mut self) -> Value {
        self.seq += 1;
        self.clock_ms += STEP_MAX_MS;
        json!({
            "event_type": "till",
            "register_id": self.register_id,
            "pos_sequence": self.seq,
            "business_day": self.business_day,
            "operator_id": self.operator,
            "occurred_at": rfc3339(self.clock_ms),
            "flags": {"training": false, "offline_payment": false, "reprint": false},
            "body": self.till("close", self.data.float),
        })
    }

    /// The next event as a JSON object.
    pub fn next_event(&mut self) -> Value {
        let index = self.seq;
        self.seq += 1;
        let position = (index % BLOCK as u64) as usize;
        if position == 0 {
            self.plan_block(index == 0);
        }
        if index.is_multiple_of(PAN_EVERY) {
            self.pan_at = index + self.dice.below(PAN_EVERY);
        }
        self.clock_ms += self.dice.range(STEP_MIN_MS, STEP_MAX_MS);

        let mut flags = Flags::default();
        let mut ext: Option<Map<String, Value>> = None;
        let slot = self.block.get(position).copied().unwrap_or(Slot::Ordinary);
        let (event_type, body) = match slot {
            Slot::Ordinary => self.ordinary(&mut flags, &mut ext),
            Slot::SignOn => ("operator", json!({ "action": "sign_on" })),
            Slot::TillOpen => ("till", self.till("open", self.data.float)),
            Slot::PlainSale => ("transaction", self.sale(None, &mut flags, &mut ext)),
            Slot::Edge(Edge::NoSale) => ("no_sale", self.no_sale()),
            Slot::Edge(Edge::PartialRefund) => ("transaction", self.refund(&mut flags, &mut ext)),
            Slot::Edge(Edge::PostVoid) => ("transaction", self.post_void(&mut flags, &mut ext)),
            Slot::Edge(edge) => ("transaction", self.sale(Some(edge), &mut flags, &mut ext)),
        };

        let mut event = Map::new();
        event.insert("event_type".into(), json!(event_type));
        event.insert("register_id".into(), json!(self.register_id));
        event.insert("pos_sequence".into(), json!(self.seq));
        event.insert("business_day".into(), json!(self.business_day));
        event.insert("operator_id".into(), json!(self.operator));
        event.insert("occurred_at".into(), json!(rfc3339(self.clock_ms)));
        event.insert(
            "flags".into(),
            json!({
                "training": flags.training,
                "offline_payment": flags.offline_payment,
                "reprint": flags.reprint,
            }),
        );
        event.insert("body".into(), body);
        if let Some(ext) = ext {
            event.insert("ext".into(), Value::Object(ext));
        }
        let mut event = Value::Object(event);
        if index == self.pan_at {
            self.plant_pan(&mut event);
        }
        event
    }

    /// Lays out the next block of 25 events: every edge case at a random position.
    ///
    /// The first block starts with a sign-on, the till float and two plain sales. From
    /// then on at least two remembered sales exist at every block start (each block adds
    /// five edge-case sales and consumes at most two), so the refund and the post-void of
    /// a block always have a target.
    fn plan_block(&mut self, first: bool) {
        let mut slots = [Slot::Ordinary; BLOCK];
        let mut free: Vec<usize> = (0..BLOCK).collect();
        if first {
            for (position, slot) in [
                Slot::SignOn,
                Slot::TillOpen,
                Slot::PlainSale,
                Slot::PlainSale,
            ]
            .into_iter()
            .enumerate()
            {
                slots[position] = slot;
            }
            free.drain(..4);
        }
        for edge in EDGES {
            let position = free.swap_remove(self.dice.index(free.len()));
            slots[position] = Slot::Edge(edge);
        }
        self.block = slots;
    }

    /// Everyday traffic: about one in six is a drawer, till or operator event.
    fn ordinary(
        &mut self,
        flags: &mut Flags,
        ext: &mut Option<Map<String, Value>>,
    ) -> (&'static str, Value) {
        match self.dice.below(100) {
            0..=6 => ("drawer", self.drawer()),
            7..=10 => {
                let action = if self.dice.chance(70) {
                    "pickup"
                } else {
                    "loan"
                };
                let amount = self.dice.range(5, 30) * 1000;
                ("cash_movement", self.till(action, amount))
            }
            11..=16 => ("operator", self.switch_operator()),
            _ => ("transaction", self.sale(None, flags, ext)),
        }
    }

    /// A till event or movement of cash (float, pickup to the safe, loan from the safe).
    fn till(&self, action: &str, amount: i64) -> Value {
        json!({ "action": action, "amount": amount, "currency": self.data.currency })
    }

    /// A drawer opened or closed outside a sale.
    fn drawer(&mut self) -> Value {
        if self.dice.chance(50) {
            json!({ "action": "open", "drawer_id": "1", "reason": "manual" })
        } else {
            let open_seconds = self.dice.range(2, 90);
            json!({ "action": "close", "drawer_id": "1", "open_seconds": open_seconds })
        }
    }

    /// A no-sale: the drawer opened without a transaction.
    fn no_sale(&mut self) -> Value {
        let reason = self.dice.pick(
            &[
                "change_request",
                "check_receipt",
                "count_drawer",
                "customer_exchange",
            ],
            "change_request",
        );
        json!({ "reason": reason, "drawer_id": "1" })
    }

    /// Another operator signs on and replaces the current one.
    fn switch_operator(&mut self) -> Value {
        let previous = self.operator;
        let others: Vec<&'static str> = self
            .data
            .operators
            .iter()
            .copied()
            .filter(|op| *op != previous)
            .collect();
        self.operator = self.dice.pick(&others, previous);
        json!({ "action": "sign_on", "previous_operator_id": previous })
    }

    /// A line for a catalogue article, with a plausible quantity and modifiers.
    fn catalog_entry(&mut self, article: &'static CatalogItem) -> Entry {
        let qty_milli = if article.weighted {
            self.dice.range(100, 1500)
        } else {
            match self.dice.below(100) {
                0..=74 => 1000,
                75..=92 => 2000,
                _ => self.dice.range(3, 6) * 1000,
            }
        };
        let mut entry = Entry::new(
            ItemSpec {
                sku: Some(article.sku),
                gtin: article.gtin,
                description: article.description,
                department: article.department,
                unit_price: article.price,
                tax: article.tax,
                weighted: article.weighted,
            },
            qty_milli,
        );
        if article.modifiable && self.dice.chance(30) {
            entry
                .modifiers
                .push(self.dice.pick(self.data.modifiers, "no onions"));
        }
        entry
    }

    /// A line for a random catalogue article matching `wanted` (any article if none does).
    fn random_entry(&mut self, wanted: impl Fn(&CatalogItem) -> bool) -> Entry {
        let catalog = self.data.catalog;
        let matching = catalog.iter().filter(|a| wanted(a)).count();
        let chosen = if matching == 0 {
            catalog.get(self.dice.index(catalog.len()))
        } else {
            let nth = self.dice.index(matching);
            catalog.iter().filter(|a| wanted(a)).nth(nth)
        };
        match chosen {
            Some(article) => self.catalog_entry(article),
            None => Entry::new(
                ItemSpec {
                    sku: None,
                    gtin: None,
                    description: "Open item",
                    department: "misc",
                    unit_price: 100,
                    tax: 0,
                    weighted: false,
                },
                1000,
            ),
        }
    }

    /// An item rung up on an open department key, without a SKU.
    fn open_entry(&mut self) -> Entry {
        let open = self.data.open;
        let (department, description, min, max, tax) = match open.get(self.dice.index(open.len())) {
            Some(dept) => (
                dept.department,
                dept.description,
                dept.min,
                dept.max,
                dept.tax,
            ),
            None => ("misc", "Open item", 100, 1000, 0),
        };
        let unit_price = self.dice.range(min, max);
        Entry::new(
            ItemSpec {
                sku: None,
                gtin: None,
                description,
                department,
                unit_price,
                tax,
                weighted: false,
            },
            1000,
        )
    }

    /// A random payment method, following the profile's tender mix.
    fn random_plan(&mut self) -> TenderPlan {
        let d = self.data;
        let roll = self.dice.below(100);
        if roll < d.cash_pct {
            TenderPlan::Cash
        } else if roll < d.cash_pct + d.debit_pct {
            TenderPlan::Card {
                debit: true,
                offline: false,
            }
        } else if roll < d.cash_pct + d.debit_pct + d.mobile_pct {
            TenderPlan::Mobile
        } else if roll < d.cash_pct + d.debit_pct + d.mobile_pct + d.split_pct {
            TenderPlan::Split
        } else {
            TenderPlan::Card {
                debit: false,
                offline: false,
            }
        }
    }

    /// A completed sale, shaped by the edge case it has to show (if any).
    fn sale(
        &mut self,
        edge: Option<Edge>,
        flags: &mut Flags,
        ext: &mut Option<Map<String, Value>>,
    ) -> Value {
        let count = self.dice.range(2, self.data.max_items);
        let mut entries: Vec<Entry> = (0..count).map(|_| self.random_entry(|_| true)).collect();
        // The first line is never discounted, so every sale has a line a refund can take
        // back at its plain unit price.
        for entry in entries.iter_mut().skip(1) {
            if self.dice.chance(8) {
                entry.discount = Some(self.dice.pick(&DISCOUNTS, DISCOUNTS[0]));
            }
        }
        let last = entries.len() - 1;
        match edge {
            Some(Edge::MixedTax) => {
                entries[0] = self.random_entry(|a| a.tax == 0);
                entries[last] = self.random_entry(|a| a.tax == 1);
            }
            Some(Edge::NoSku) => {
                let at = self.dice.index(entries.len());
                entries[at] = self.open_entry();
            }
            Some(Edge::SplitTender) => {
                // A piece item of at least 5.00 makes the total worth splitting.
                entries[0] = self.random_entry(|a| !a.weighted && a.price >= 500);
            }
            Some(Edge::LineVoid) => {
                let mut voided = self.random_entry(|a| !a.weighted);
                voided.void = true;
                let at = 1 + self.dice.index(entries.len());
                let mut voiding = voided.clone();
                voiding.void = false;
                voiding.voids = Some(at);
                voiding.qty_milli = -voided.qty_milli;
                voiding.modifiers.clear();
                entries.insert(at, voided);
                let later = at + 1 + self.dice.index(entries.len() - at);
                entries.insert(later, voiding);
            }
            Some(Edge::Training) => flags.training = true,
            Some(Edge::OfflinePayment) => flags.offline_payment = true,
            _ => {}
        }
        let plan = match edge {
            Some(Edge::SplitTender) => TenderPlan::Split,
            Some(Edge::OfflinePayment) => TenderPlan::Card {
                debit: false,
                offline: true,
            },
            _ => self.random_plan(),
        };
        let tally = self.tally(&entries);
        let tenders = self.pay(tally.grand(), plan);
        let line_numbers = tally.line_numbers.clone();
        let mut body = self.finish("sale", "completed", tally, &tenders, false);
        let customer = self.dice.chance(self.data.customer_pct).then(|| {
            json!({
                "id": format!("C{:06}", self.dice.below(1_000_000)),
                "loyalty_id": format!("LY{:08}", self.dice.below(100_000_000)),
            })
        });
        if let (Some(customer), Some(obj)) = (&customer, body.as_object_mut()) {
            obj.insert("customer".into(), customer.clone());
        }
        if self.data.tables {
            let mut table = Map::new();
            table.insert(
                "table".into(),
                json!(format!("T{}", self.dice.range(1, 24))),
            );
            table.insert("covers".into(), json!(self.dice.range(1, 6)));
            *ext = Some(table);
        }
        if !flags.training {
            self.history.push(SaleRecord {
                pos_sequence: self.seq,
                entries,
                line_numbers,
                tenders,
                customer,
            });
            if self.history.len() > HISTORY_CAP {
                self.history.remove(0);
            }
        }
        body
    }

    /// A partial refund of an earlier sale: some of its lines (or fewer pieces), never all.
    fn refund(&mut self, flags: &mut Flags, ext: &mut Option<Map<String, Value>>) -> Value {
        if self.history.is_empty() {
            // Unreachable by the block plan; a plain sale keeps the stream well-formed.
            return self.sale(None, flags, ext);
        }
        let original = self.history.remove(self.dice.index(self.history.len()));
        let real = |e: &&Entry| !e.void && e.voids.is_none();
        let real_lines = original.entries.iter().filter(real).count();
        // Undiscounted real lines go back at their plain unit price; the first line of a
        // sale is always one of them.
        let mut candidates: Vec<(u64, Entry)> = original
            .entries
            .iter()
            .zip(original.line_numbers.iter().copied())
            .filter(|(e, _)| real(e) && e.discount.is_none())
            .map(|(e, line)| (line, e.clone()))
            .collect();
        // Fewer lines than the sale had, so the refund is always partial.
        let most = candidates
            .len()
            .min(real_lines.saturating_sub(1))
            .clamp(1, 2);
        let take = 1 + self.dice.index(most);
        let mut entries = Vec::with_capacity(take);
        let mut links = Vec::with_capacity(take);
        for _ in 0..take {
            if candidates.is_empty() {
                break;
            }
            let (line, mut entry) = candidates.swap_remove(self.dice.index(candidates.len()));
            entry.qty_milli = if entry.item.weighted {
                -entry.qty_milli
            } else {
                -(self.dice.range(1, entry.qty_milli / 1000) * 1000)
            };
            entry.modifiers.clear();
            entries.push(entry);
            links.push(json!({
                "reason": "return",
                "pos_sequence": original.pos_sequence,
                "register_id": self.register_id,
                "business_day": self.business_day,
                "line": line,
            }));
        }
        let card = original.tenders.into_iter().find_map(|t| t.card);
        let tally = self.tally(&entries);
        let tenders = self.pay(tally.grand(), TenderPlan::Refund(card));
        let mut body = self.finish("return", "completed", tally, &tenders, false);
        if let Some(obj) = body.as_object_mut() {
            obj.insert("links".into(), Value::Array(links));
        }
        body
    }

    /// A post-void of the most recent sale: its lines and totals again, status "voided",
    /// card authorisations reversed.
    fn post_void(&mut self, flags: &mut Flags, ext: &mut Option<Map<String, Value>>) -> Value {
        let Some(original) = self.history.pop() else {
            // Unreachable by the block plan; a plain sale keeps the stream well-formed.
            return self.sale(None, flags, ext);
        };
        let tally = self.tally(&original.entries);
        let mut body = self.finish("sale", "voided", tally, &original.tenders, true);
        if let Some(obj) = body.as_object_mut() {
            obj.insert(
                "links".into(),
                json!([{
                    "reason": "post_void",
                    "pos_sequence": original.pos_sequence,
                    "register_id": self.register_id,
                    "business_day": self.business_day,
                }]),
            );
            if let Some(customer) = original.customer {
                obj.insert("customer".into(), customer);
            }
        }
        body
    }

    /// Builds the item, discount and tax lines. Draws no random numbers, so the same
    /// entries always give the same lines (a post-void relies on that).
    fn tally(&self, entries: &[Entry]) -> Tally {
        let taxes = self.data.taxes;
        let mut lines: Vec<Value> = Vec::with_capacity(entries.len() + 6);
        let mut line_numbers: Vec<u64> = Vec::with_capacity(entries.len());
        let mut next_line: u64 = 1;
        let (mut gross, mut discounts, mut item_count) = (0i64, 0i64, 0i64);
        // tax index -> (taxable, tax amount)
        let mut per_rate: BTreeMap<usize, (i64, i64)> = BTreeMap::new();

        for entry in entries {
            let number = next_line;
            next_line += 1;
            line_numbers.push(number);
            let spec = &entry.item;
            let extended = div_round(
                i128::from(entry.qty_milli) * i128::from(spec.unit_price),
                1000,
            );
            let discount = entry.discount.map_or(0, |d| d.amount(extended));
            let net = extended + discount;
            let (code, rate_e4) = taxes
                .get(spec.tax)
                .map_or(("X", 0), |t| (t.code, t.rate_e4));
            let tax = div_round(i128::from(net) * i128::from(rate_e4), 10_000);
            let sums = per_rate.entry(spec.tax).or_insert((0, 0));
            sums.0 += net;
            sums.1 += tax;
            gross += extended;
            discounts += discount;
            item_count += if spec.weighted {
                entry.qty_milli.signum()
            } else {
                entry.qty_milli / 1000
            };

            let mut line = Map::new();
            line.insert("line".into(), json!(number));
            line.insert("kind".into(), json!("item"));
            match spec.sku {
                Some(sku) => {
                    line.insert("sku".into(), json!(sku));
                    if let Some(gtin) = spec.gtin {
                        line.insert("gtin".into(), json!(gtin));
                    }
                }
                None => {
                    line.insert("no_sku".into(), json!(true));
                }
            }
            line.insert("description".into(), json!(spec.description));
            line.insert("department".into(), json!(spec.department));
            line.insert(
                "quantity".into(),
                json!(format_quantity(entry.qty_milli, spec.weighted)),
            );
            line.insert("uom".into(), json!(if spec.weighted { "kg" } else { "ea" }));
            line.insert("unit_price".into(), json!(spec.unit_price));
            line.insert("extended".into(), json!(extended));
            line.insert(
                "taxes".into(),
                json!([{ "code": code, "rate": format_rate(rate_e4), "amount": tax }]),
            );
            if !entry.modifiers.is_empty() {
                let modifiers: Vec<Value> = entry
                    .modifiers
                    .iter()
                    .map(|m| json!({ "description": m }))
                    .collect();
                line.insert("modifiers".into(), Value::Array(modifiers));
            }
            if entry.void {
                line.insert("void".into(), json!(true));
            }
            if let Some(target) = entry.voids.and_then(|i| line_numbers.get(i)) {
                line.insert("voids_line".into(), json!(target));
            }
            lines.push(Value::Object(line));

            if let Some(d) = entry.discount.filter(|_| discount != 0) {
                lines.push(json!({
                    "line": next_line,
                    "kind": "discount",
                    "description": d.description(),
                    "applies_to_line": number,
                    "amount": discount,
                }));
                next_line += 1;
            }
        }

        let mut tax_total = 0i64;
        for (index, (taxable, amount)) in per_rate {
            let (code, rate_e4) = taxes.get(index).map_or(("X", 0), |t| (t.code, t.rate_e4));
            lines.push(json!({
                "line": next_line,
                "kind": "tax",
                "code": code,
                "rate": format_rate(rate_e4),
                "taxable": taxable,
                "amount": amount,
            }));
            next_line += 1;
            tax_total += amount;
        }
        Tally {
            lines,
            line_numbers,
            next_line,
            gross,
            discounts,
            tax: tax_total,
            item_count,
        }
    }

    /// Pays `grand` according to the plan.
    fn pay(&mut self, grand: i64, plan: TenderPlan) -> Vec<Tender> {
        let approved = |code: String| Some(("approved", code));
        match plan {
            TenderPlan::Cash => vec![Tender {
                tender_type: "cash",
                amount: self.cash_tendered(grand),
                card: None,
                auth: None,
            }],
            TenderPlan::Card { debit, offline } => {
                let card = self.new_card(debit);
                // "Y1" is the EMV authorisation response code of an offline approval.
                let auth = if offline {
                    Some(("offline_approved", "Y1".to_owned()))
                } else {
                    approved(self.auth_code())
                };
                vec![Tender {
                    tender_type: card.tender_type,
                    amount: grand,
                    card: Some(card),
                    auth,
                }]
            }
            TenderPlan::Mobile => vec![Tender {
                tender_type: "mobile",
                amount: grand,
                card: None,
                auth: approved(self.auth_code()),
            }],
            TenderPlan::Split => {
                let mut cash = grand / 2 / 100 * 100;
                if cash <= 0 {
                    cash = grand / 2;
                }
                let card = self.new_card(false);
                vec![
                    Tender {
                        tender_type: "cash",
                        amount: cash,
                        card: None,
                        auth: None,
                    },
                    Tender {
                        tender_type: card.tender_type,
                        amount: grand - cash,
                        card: Some(card),
                        auth: approved(self.auth_code()),
                    },
                ]
            }
            TenderPlan::Refund(Some(card)) => vec![Tender {
                tender_type: card.tender_type,
                amount: grand,
                card: Some(card),
                auth: approved(self.auth_code()),
            }],
            TenderPlan::Refund(None) => vec![Tender {
                tender_type: "cash",
                amount: grand,
                card: None,
                auth: None,
            }],
        }
    }

    /// Completes a body: tender and change lines after the tally, then the totals.
    /// `reversed` marks every authorisation as reversed (a post-void).
    fn finish(
        &self,
        kind: &str,
        status: &str,
        tally: Tally,
        tenders: &[Tender],
        reversed: bool,
    ) -> Value {
        let grand = tally.grand();
        let Tally {
            mut lines,
            mut next_line,
            gross,
            discounts,
            tax,
            item_count,
            ..
        } = tally;
        let mut tendered = 0i64;
        for tender in tenders {
            let mut line = Map::new();
            line.insert("line".into(), json!(next_line));
            line.insert("kind".into(), json!("tender"));
            line.insert("type".into(), json!(tender.tender_type));
            line.insert("amount".into(), json!(tender.amount));
            if let Some(card) = &tender.card {
                line.insert(
                    "card".into(),
                    json!({
                        "brand": card.brand,
                        "last4": card.last4,
                        "entry_mode": card.entry_mode,
                    }),
                );
            }
            if let Some((status, code)) = &tender.auth {
                let status = if reversed { "reversed" } else { status };
                line.insert("auth".into(), json!({ "status": status, "code": code }));
            }
            lines.push(Value::Object(line));
            next_line += 1;
            tendered += tender.amount;
        }
        let change = tendered - grand;
        if change != 0 {
            lines.push(json!({ "line": next_line, "kind": "change", "amount": change }));
        }
        json!({
            "status": status,
            "kind": kind,
            "currency": self.data.currency,
            "lines": lines,
            "totals": {
                "gross": gross,
                "discounts": discounts,
                "tax": tax,
                "grand": grand,
                "tendered": tendered,
                "change": change,
                "item_count": item_count,
            },
            "links": [],
        })
    }

    /// What a cash customer hands over: exact money or the next coin or note up.
    fn cash_tendered(&mut self, grand: i64) -> i64 {
        let step = self.dice.pick(&[1, 100, 500, 1000, 5000], 1);
        if grand <= 0 {
            return grand;
        }
        (grand + step - 1) / step * step
    }

    /// A freshly presented card (only brand and last four digits; never a PAN).
    fn new_card(&mut self, debit: bool) -> CardInfo {
        let (tender_type, brands) = if debit {
            ("debit", self.data.debit_brands)
        } else {
            ("credit", self.data.credit_brands)
        };
        let brand = self.dice.pick(brands, "visa");
        let entry_mode = match self.dice.below(100) {
            0..=59 => "contactless",
            60..=89 => "chip",
            90..=96 => "swipe",
            _ => "manual",
        };
        CardInfo {
            tender_type,
            brand,
            last4: format!("{:04}", self.dice.below(10_000)),
            entry_mode,
        }
    }

    /// A six-character authorisation code.
    fn auth_code(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
        (0..6)
            .map(|_| char::from(self.dice.pick(ALPHABET, b'A')))
            .collect()
    }

    /// Writes a test PAN somewhere awkward: an item description, `ext.note`,
    /// `ext.customer_note`, or the tender's card object as `pan`.
    fn plant_pan(&mut self, event: &mut Value) {
        let pan = TEST_PANS
            .get(self.dice.index(TEST_PANS.len()))
            .unwrap_or(&TEST_PANS[0]);
        let written = spell_pan(pan.digits, self.dice.below(3));
        let is_transaction = event.get("event_type") == Some(&json!("transaction"));
        let mut place = if is_transaction {
            self.dice.below(4)
        } else {
            1
        };
        if place == 3 && !plant_in_card(event, pan, &written) {
            place = 0;
        }
        match place {
            0 => {
                let planted = event
                    .get_mut("body")
                    .and_then(|b| b.get_mut("lines"))
                    .and_then(Value::as_array_mut)
                    .and_then(|lines| lines.iter_mut().find(|l| l["kind"] == "item"))
                    .and_then(|line| line.get_mut("description"))
                    .and_then(|d| match d {
                        Value::String(text) => {
                            text.push_str(&format!(" ref {written}"));
                            Some(())
                        }
                        _ => None,
                    });
                if planted.is_none() {
                    insert_ext(event, "note", format!("card {written}"));
                }
            }
            1 => insert_ext(
                event,
                "note",
                format!("customer paid with card {written}, call if declined"),
            ),
            2 => insert_ext(
                event,
                "customer_note",
                format!("Please call back about my order, card no. {written}"),
            ),
            _ => {}
        }
    }
}

/// Puts the PAN into the first card tender as `pan` (matching brand and last4);
/// false when the event has no card tender.
fn plant_in_card(event: &mut Value, pan: &TestPan, written: &str) -> bool {
    let card = event
        .get_mut("body")
        .and_then(|b| b.get_mut("lines"))
        .and_then(Value::as_array_mut)
        .and_then(|lines| {
            lines
                .iter_mut()
                .find_map(|l| l.get_mut("card").and_then(Value::as_object_mut))
        });
    match card {
        Some(card) => {
            let last4 = pan.digits.get(pan.digits.len() - 4..).unwrap_or("0000");
            card.insert("pan".into(), json!(written));
            card.insert("brand".into(), json!(pan.brand));
            card.insert("last4".into(), json!(last4));
            true
        }
        None => false,
    }
}

/// Sets `ext.<key>`, creating `ext` when the event has none.
fn insert_ext(event: &mut Value, key: &str, text: String) {
    if let Some(obj) = event.as_object_mut() {
        let ext = obj
            .entry("ext")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(ext) = ext.as_object_mut() {
            ext.insert(key.into(), json!(text));
        }
    }
}

/// A PAN as a person might type it: plain (style 0), spaced (1) or dashed (2), grouped
/// 4-6-5 for 15-digit Amex numbers and in fours otherwise.
fn spell_pan(digits: &str, style: u64) -> String {
    let separator = match style {
        1 => " ",
        2 => "-",
        _ => return digits.to_owned(),
    };
    let groups: &[usize] = if digits.len() == 15 {
        &[4, 6, 5]
    } else {
        &[4, 4, 4, 4, 3]
    };
    let mut parts = Vec::new();
    let mut rest = digits;
    for &size in groups {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at(size.min(rest.len()));
        parts.push(head);
        rest = tail;
    }
    if !rest.is_empty() {
        parts.push(rest);
    }
    parts.join(separator)
}

/// True if any string (or key, or number) in `v` holds one of the generator's test PANs,
/// plain or written with single spaces or dashes between digits.
pub fn contains_test_pan(v: &Value) -> bool {
    match v {
        Value::String(s) => text_has_test_pan(s),
        Value::Number(n) => text_has_test_pan(&n.to_string()),
        Value::Array(items) => items.iter().any(contains_test_pan),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| text_has_test_pan(k) || contains_test_pan(v)),
        Value::Null | Value::Bool(_) => false,
    }
}

/// True if a digit run of `text` contains a test PAN.
fn text_has_test_pan(text: &str) -> bool {
    digit_runs(text)
        .iter()
        .any(|run| TEST_PANS.iter().any(|pan| run.contains(pan.digits)))
}

/// The digit runs of `text`, where a single space or dash between two digits does not
/// end a run (that is how card numbers are written by hand).
fn digit_runs(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut runs = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_digit() {
            current.push(c);
            continue;
        }
        let joins = (c == ' ' || c == '-')
            && !current.is_empty()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if !joins && !current.is_empty() {
            runs.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// `num / den` rounded half away from zero (`den` > 0), the rounding of every amount.
fn div_round(num: i128, den: i128) -> i64 {
    let quotient = num / den;
    let remainder = num % den;
    let adjust = if 2 * remainder.abs() >= den {
        num.signum()
    } else {
        0
    };
    (quotient + adjust) as i64
}

/// A quantity string: three decimals for weighed goods ("0.420"), whole pieces otherwise.
fn format_quantity(qty_milli: i64, weighted: bool) -> String {
    if weighted {
        let sign = if qty_milli < 0 { "-" } else { "" };
        let abs = qty_milli.unsigned_abs();
        format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
    } else {
        (qty_milli / 1000).to_string()
    }
}

/// A tax rate string with at least two decimals: 1900 → "0.19", 875 → "0.0875".
fn format_rate(rate_e4: i64) -> String {
    let mut text = format!("{}.{:04}", rate_e4 / 10_000, rate_e4 % 10_000);
    while text.ends_with('0') && text.len() > text.find('.').map_or(0, |dot| dot + 3) {
        text.pop();
    }
    text
}

/// A stable 64-bit hash (FNV-1a); std's hasher is not guaranteed stable across releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The SplitMix64 finaliser, used to mix the seed inputs thoroughly.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The ChaCha seed for one register's stream: the user seed mixed with the register id,
/// the business day and the profile.
fn stream_seed(seed: u64, profile_tag: u64, register_id: &str, business_day: &str) -> [u8; 32] {
    let mut state = splitmix64(seed);
    state = splitmix64(state ^ fnv1a(register_id.as_bytes()));
    state = splitmix64(state ^ fnv1a(business_day.as_bytes()));
    state = splitmix64(state ^ profile_tag);
    let mut out = [0u8; 32];
    for chunk in out.chunks_exact_mut(8) {
        state = splitmix64(state);
        chunk.copy_from_slice(&state.to_le_bytes());
    }
    out
}

/// Days since 1970-01-01 of a strict "YYYY-MM-DD" date, or None if it is not one.
fn parse_day(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > month_days {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The (year, month, day) of a day number since 1970-01-01 (inverse of the above).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// RFC 3339 UTC with milliseconds for a millisecond timestamp since the Unix epoch.
fn rfc3339(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(DAY_MS));
    let in_day = ms.rem_euclid(DAY_MS);
    let secs = in_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        in_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};
    use std::sync::OnceLock;

    const DAY: &str = "2025-03-14";

    /// The first `n` events of a generator.
    fn stream(seed: u64, profile: Profile, register: &str, n: usize) -> Vec<Value> {
        let mut generator = Generator::new(seed, profile, register, DAY);
        (0..n).map(|_| generator.next_event()).collect()
    }

    /// The stream as the NDJSON text a register would send.
    fn text(events: &[Value]) -> Vec<String> {
        events
            .iter()
            .map(|e| serde_json::to_string(e).expect("serialise"))
            .collect()
    }

    fn int(v: &Value) -> i64 {
        v.as_i64()
            .unwrap_or_else(|| panic!("expected an integer, got {v}"))
    }

    fn str_of(v: &Value) -> &str {
        v.as_str()
            .unwrap_or_else(|| panic!("expected a string, got {v}"))
    }

    /// A decimal string ("-0.420", "2") in thousandths.
    fn milli(s: &str) -> i64 {
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        assert!(frac.len() <= 3, "quantity {s} has more than 3 decimals");
        let value = whole.parse::<i64>().expect("whole part") * 1000
            + format!("{frac:0<3}").parse::<i64>().expect("fraction");
        if negative { -value } else { value }
    }

    /// A rate string ("0.0875") in ten-thousandths.
    fn rate_e4(s: &str) -> i64 {
        let (whole, frac) = s.split_once('.').expect("rate has a dot");
        assert!(frac.len() <= 4 && frac.len() >= 2, "rate {s}");
        whole.parse::<i64>().expect("whole") * 10_000
            + format!("{frac:0<4}").parse::<i64>().expect("fraction")
    }

    fn lines_of<'a>(event: &'a Value, kind: &str) -> Vec<&'a Value> {
        event["body"]["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .filter(|l| l["kind"] == kind)
            .collect()
    }

    fn is_card_tender(line: &Value) -> bool {
        matches!(line["type"].as_str(), Some("credit" | "debit"))
    }

    /// Recomputes every amount of a transaction from its lines and compares.
    fn check_money(event: &Value) -> Result<(), String> {
        let body = &event["body"];
        let totals = &body["totals"];
        let lines = body["lines"].as_array().ok_or("no lines")?;
        let mut numbers = BTreeSet::new();
        for (i, line) in lines.iter().enumerate() {
            if int(&line["line"]) != i as i64 + 1 || !numbers.insert(int(&line["line"])) {
                return Err(format!("line numbers are not 1..n: {line}"));
            }
        }
        let mut discount_of: HashMap<i64, i64> = HashMap::new();
        for d in lines_of(event, "discount") {
            *discount_of.entry(int(&d["applies_to_line"])).or_default() += int(&d["amount"]);
        }
        let (mut gross, mut item_count) = (0i64, 0i64);
        let mut per_code: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
        for item in lines_of(event, "item") {
            let qty = milli(str_of(&item["quantity"]));
            let price = int(&item["unit_price"]);
            let extended = int(&item["extended"]);
            if extended != div_round(i128::from(qty) * i128::from(price), 1000) {
                return Err(format!("extended wrong: {item}"));
            }
            let net = extended + discount_of.get(&int(&item["line"])).copied().unwrap_or(0);
            let taxes = item["taxes"].as_array().ok_or("no taxes[]")?;
            for tax in taxes {
                let rate = rate_e4(str_of(&tax["rate"]));
                let amount = int(&tax["amount"]);
                if amount != div_round(i128::from(net) * i128::from(rate), 10_000) {
                    return Err(format!("item tax wrong: {item}"));
                }
                let sums = per_code
                    .entry(str_of(&tax["code"]).to_owned())
                    .or_insert((rate, 0, 0));
                if sums.0 != rate {
                    return Err(format!("code {} has two rates", str_of(&tax["code"])));
                }
                sums.1 += net;
                sums.2 += amount;
            }
            gross += extended;
            item_count += if item["uom"] == "kg" {
                qty.signum()
            } else {
                qty / 1000
            };
        }
        let tax_lines = lines_of(event, "tax");
        if tax_lines.len() != per_code.len() {
            return Err("not one tax line per rate".into());
        }
        let mut tax = 0i64;
        for line in tax_lines {
            let code = str_of(&line["code"]);
            let (rate, taxable, amount) = per_code.get(code).copied().ok_or("stray tax line")?;
            if rate_e4(str_of(&line["rate"])) != rate
                || int(&line["taxable"]) != taxable
                || int(&line["amount"]) != amount
            {
                return Err(format!("tax line disagrees with item taxes: {line}"));
            }
            tax += amount;
        }
        let discounts: i64 = lines_of(event, "discount")
            .iter()
            .map(|d| int(&d["amount"]))
            .sum();
        let tendered: i64 = lines_of(event, "tender")
            .iter()
            .map(|t| int(&t["amount"]))
            .sum();
        let change: i64 = lines_of(event, "change")
            .iter()
            .map(|c| int(&c["amount"]))
            .sum();
        let expect = [
            ("gross", gross),
            ("discounts", discounts),
            ("tax", tax),
            ("grand", gross + discounts + tax),
            ("tendered", tendered),
            ("change", change),
            ("item_count", item_count),
        ];
        for (name, value) in expect {
            if int(&totals[name]) != value {
                return Err(format!(
                    "totals.{name} = {} but lines give {value}",
                    totals[name]
                ));
            }
        }
        if tendered - change != int(&totals["grand"]) {
            return Err("tendered - change != grand".into());
        }
        let sale = body["kind"] == "sale";
        if sale && (int(&totals["grand"]) <= 0 || change < 0) {
            return Err("a sale must have a positive total and non-negative change".into());
        }
        if !sale && (int(&totals["grand"]) >= 0 || change != 0) {
            return Err("a return must pay out money without change".into());
        }
        Ok(())
    }

    /// The edge cases an event shows, judged from its JSON alone.
    fn edges_in(event: &Value) -> Vec<Edge> {
        let mut found = Vec::new();
        if event["event_type"] == "no_sale" {
            found.push(Edge::NoSale);
        }
        if event["event_type"] != "transaction" {
            return found;
        }
        let body = &event["body"];
        let tenders = lines_of(event, "tender");
        let items = lines_of(event, "item");
        let links = body["links"].as_array().cloned().unwrap_or_default();
        if tenders.iter().any(|t| t["type"] == "cash") && tenders.iter().any(|t| is_card_tender(t))
        {
            found.push(Edge::SplitTender);
        }
        if body["kind"] == "return"
            && links.iter().any(|l| l["reason"] == "return")
            && items
                .iter()
                .all(|i| str_of(&i["quantity"]).starts_with('-'))
        {
            found.push(Edge::PartialRefund);
        }
        let rates: BTreeSet<&str> = lines_of(event, "tax")
            .iter()
            .map(|t| str_of(&t["rate"]))
            .collect();
        if rates.len() >= 2 {
            found.push(Edge::MixedTax);
        }
        if items
            .iter()
            .any(|i| i["no_sku"] == true && i.get("sku").is_none() && i["department"].is_string())
        {
            found.push(Edge::NoSku);
        }
        let voided: BTreeSet<i64> = items
            .iter()
            .filter(|i| i["void"] == true)
            .map(|i| int(&i["line"]))
            .collect();
        if items.iter().any(|i| {
            i["voids_line"]
                .as_i64()
                .is_some_and(|n| voided.contains(&n) && n < int(&i["line"]))
        }) {
            found.push(Edge::LineVoid);
        }
        if body["status"] == "voided" && links.iter().any(|l| l["reason"] == "post_void") {
            found.push(Edge::PostVoid);
        }
        if event["flags"]["training"] == true {
            found.push(Edge::Training);
        }
        if event["flags"]["offline_payment"] == true
            && tenders
                .iter()
                .any(|t| t["auth"]["status"] == "offline_approved")
        {
            found.push(Edge::OfflinePayment);
        }
        found
    }

    fn luhn_valid(digits: &str) -> bool {
        let sum: u32 = digits
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 1 {
                    if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
                } else {
                    d
                }
            })
            .sum();
        sum.is_multiple_of(10)
    }

    /// What a PCI redactor would flag: any 13-19 digit window of a run that passes Luhn.
    fn looks_like_card(v: &Value) -> bool {
        match v {
            Value::String(s) => digit_runs(s).iter().any(|run| {
                (13..=19).any(|len| {
                    run.len() >= len
                        && (0..=run.len() - len).any(|start| luhn_valid(&run[start..start + len]))
                })
            }),
            Value::Array(items) => items.iter().any(looks_like_card),
            Value::Object(map) => map.values().any(looks_like_card),
            _ => false,
        }
    }

    fn all_integers(v: &Value) -> bool {
        match v {
            Value::Number(n) => n.is_i64() || n.is_u64(),
            Value::Array(items) => items.iter().all(all_integers),
            Value::Object(map) => map.values().all(all_integers),
            _ => true,
        }
    }

    /// Register id of the shared samples.
    const REG: &str = "reg-4";

    /// A 10,000-event stream per profile, generated once and shared by the tests (an
    /// unoptimised build makes only a few thousand events a second).
    fn sample(profile: Profile) -> &'static [Value] {
        static RETAIL_SAMPLE: OnceLock<Vec<Value>> = OnceLock::new();
        static RESTAURANT_SAMPLE: OnceLock<Vec<Value>> = OnceLock::new();
        let cell = match profile {
            Profile::Retail => &RETAIL_SAMPLE,
            Profile::Restaurant => &RESTAURANT_SAMPLE,
        };
        cell.get_or_init(|| stream(2025, profile, REG, 10_000))
    }

    const PROFILES: [Profile; 2] = [Profile::Retail, Profile::Restaurant];

    #[test]
    fn same_inputs_give_a_byte_identical_stream() {
        for profile in PROFILES {
            let again = stream(2025, profile, REG, 10_000);
            assert_eq!(text(sample(profile)), text(&again), "{profile:?}");
        }
    }

    #[test]
    fn seed_register_day_and_profile_each_change_the_stream() {
        let base = stream(7, Profile::Retail, "reg-1", 50);
        assert_ne!(text(&base), text(&stream(8, Profile::Retail, "reg-1", 50)));
        // Same seed, other register: the bodies differ, not only the register id.
        let bodies = |events: &[Value]| {
            events
                .iter()
                .map(|e| e["body"].to_string())
                .collect::<Vec<_>>()
        };
        assert_ne!(
            bodies(&base),
            bodies(&stream(7, Profile::Retail, "reg-2", 50))
        );
        let mut other_day = Generator::new(7, Profile::Retail, "reg-1", "2025-03-15");
        let other: Vec<Value> = (0..50).map(|_| other_day.next_event()).collect();
        assert_ne!(bodies(&base), bodies(&other));
        let restaurant = stream(7, Profile::Restaurant, "reg-1", 50);
        assert_ne!(bodies(&base), bodies(&restaurant));
    }

    #[test]
    fn envelope_is_complete_sequenced_and_register_owned_only() {
        for profile in PROFILES {
            let currency = match profile {
                Profile::Retail => "EUR",
                Profile::Restaurant => "USD",
            };
            let mut last_time = String::new();
            for (i, event) in sample(profile).iter().enumerate() {
                assert_eq!(int(&event["pos_sequence"]), i as i64 + 1);
                assert_eq!(event["register_id"], REG);
                assert_eq!(event["business_day"], DAY);
                assert!(str_of(&event["operator_id"]).len() > 2);
                let time = str_of(&event["occurred_at"]).to_owned();
                assert_eq!(time.len(), 24, "{time}");
                assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
                assert!(
                    time > last_time,
                    "occurred_at went back: {time} after {last_time}"
                );
                last_time = time;
                for flag in ["training", "offline_payment", "reprint"] {
                    assert!(event["flags"][flag].is_boolean(), "flags.{flag} in {event}");
                }
                assert!(event["body"].is_object());
                for owned in crate::event::AGENT_FIELDS {
                    assert!(event.get(owned).is_none(), "agent-owned {owned} present");
                }
                assert!(all_integers(event), "a float in {event}");
                let kind = str_of(&event["event_type"]);
                assert!(matches!(
                    kind,
                    "transaction" | "no_sale" | "drawer" | "till" | "cash_movement" | "operator"
                ));
                if kind == "transaction" {
                    assert_eq!(event["body"]["currency"], currency);
                }
            }
            // Ten thousand events at this pace stay within the business day.
            assert!(last_time.starts_with(DAY), "{last_time}");
        }
    }

    #[test]
    fn transactions_are_about_85_percent_of_events() {
        for profile in PROFILES {
            let events = sample(profile);
            let count = events
                .iter()
                .filter(|e| e["event_type"] == "transaction")
                .count();
            assert!(
                (8_000..=9_000).contains(&count),
                "{profile:?}: {count} transactions in 10,000"
            );
            for kind in ["no_sale", "drawer", "till", "cash_movement", "operator"] {
                assert!(events.iter().any(|e| e["event_type"] == kind), "no {kind}");
            }
        }
    }

    #[test]
    fn money_adds_up_in_ten_thousand_events() {
        let extra = stream(99, Profile::Retail, "lane-7", 10_000);
        for events in [sample(Profile::Retail), sample(Profile::Restaurant), &extra] {
            let mut checked = 0;
            for event in events.iter().filter(|e| e["event_type"] == "transaction") {
                if let Err(why) = check_money(event) {
                    panic!("{why}\n{event}");
                }
                checked += 1;
            }
            assert!(checked > 8_000);
        }
    }

    #[test]
    fn every_edge_case_appears_in_every_window_of_fifty() {
        let extra = stream(0, Profile::Restaurant, "", 10_000);
        for events in [sample(Profile::Retail), sample(Profile::Restaurant), &extra] {
            let shown: Vec<Vec<Edge>> = events.iter().map(edges_in).collect();
            for edge in EDGES {
                // Events since the edge case last appeared; 50 would be a bare window.
                let mut since = 0usize;
                for (i, edges) in shown.iter().enumerate() {
                    since = if edges.contains(&edge) { 0 } else { since + 1 };
                    assert!(since < 50, "no {edge:?} in the 50 events up to #{}", i + 1);
                }
            }
        }
    }

    #[test]
    fn test_pans_appear_in_one_event_in_ten_and_nowhere_else() {
        for profile in PROFILES {
            let events = sample(profile);
            let flagged: Vec<&Value> = events.iter().filter(|e| contains_test_pan(e)).collect();
            assert_eq!(flagged.len(), 1_000, "{profile:?}");
            for (block, chunk) in events.chunks(10).enumerate() {
                let n = chunk.iter().filter(|e| contains_test_pan(e)).count();
                assert_eq!(n, 1, "block {block} has {n} PAN events");
            }
            // Nothing else would trip a Luhn-based redactor (GTINs, ids, times ...).
            let lookalikes = events.iter().filter(|e| looks_like_card(e)).count();
            assert_eq!(
                lookalikes, 1_000,
                "{profile:?}: stray Luhn-valid digit runs"
            );
            // Every awkward place and every spelling is exercised.
            let mut places = BTreeSet::new();
            let mut spellings = BTreeSet::new();
            for event in &flagged {
                let planted = planted_pans(event);
                assert_eq!(planted.len(), 1, "not one planted PAN: {event}");
                let (place, written) = &planted[0];
                places.insert(*place);
                let style = TEST_PANS
                    .iter()
                    .flat_map(|p| (0..3).map(move |style| (style, spell_pan(p.digits, style))))
                    .find(|(_, spelled)| written.contains(spelled.as_str()))
                    .map(|(style, _)| style);
                spellings.insert(style.expect("a known spelling"));
            }
            assert_eq!(places.len(), 4, "{profile:?}: places {places:?}");
            assert_eq!(spellings.len(), 3, "{profile:?}: spellings {spellings:?}");
        }
    }

    /// (place, text) of every test PAN in the fields the generator plants them in.
    fn planted_pans(event: &Value) -> Vec<(&'static str, String)> {
        let mut found = Vec::new();
        let mut consider = |place: &'static str, v: &Value| {
            if let Some(text) = v.as_str().filter(|t| text_has_test_pan(t)) {
                found.push((place, text.to_owned()));
            }
        };
        if event["event_type"] == "transaction" {
            for item in lines_of(event, "item") {
                consider("description", &item["description"]);
            }
            for tender in lines_of(event, "tender") {
                consider("card.pan", &tender["card"]["pan"]);
            }
        }
        consider("ext.note", &event["ext"]["note"]);
        consider("ext.customer_note", &event["ext"]["customer_note"]);
        found
    }

    #[test]
    fn card_pan_matches_brand_and_last4() {
        let mut seen = 0;
        for profile in PROFILES {
            for event in sample(profile)
                .iter()
                .filter(|e| e["event_type"] == "transaction")
            {
                for tender in lines_of(event, "tender") {
                    if let Some(pan) = tender["card"]["pan"].as_str() {
                        let digits: String = pan.chars().filter(char::is_ascii_digit).collect();
                        assert!(digits.ends_with(str_of(&tender["card"]["last4"])));
                        let known = TEST_PANS.iter().find(|p| p.digits == digits);
                        assert_eq!(tender["card"]["brand"], known.expect("known PAN").brand);
                        seen += 1;
                    }
                }
            }
        }
        assert!(seen > 100, "only {seen} card.pan plantings");
    }

    #[test]
    fn refund_and_post_void_links_point_at_earlier_sales() {
        // Either side may carry a planted PAN after " ref " in a description.
        let plain = |v: &Value| str_of(v).split(" ref ").next().map(str::to_owned);
        for profile in PROFILES {
            let mut sales: HashMap<i64, &Value> = HashMap::new();
            let mut linked_by: HashMap<i64, i64> = HashMap::new();
            let (mut refunds, mut voids) = (0, 0);
            for event in sample(profile)
                .iter()
                .filter(|e| e["event_type"] == "transaction")
            {
                let seq = int(&event["pos_sequence"]);
                let body = &event["body"];
                let links = body["links"].as_array().expect("links");
                for (i, link) in links.iter().enumerate() {
                    assert_eq!(link["register_id"], REG);
                    assert_eq!(link["business_day"], DAY);
                    let target = int(&link["pos_sequence"]);
                    assert!(target < seq, "link forward in time");
                    let original = sales
                        .get(&target)
                        .unwrap_or_else(|| panic!("link to {target}, not a sale: {event}"));
                    assert_eq!(original["body"]["kind"], "sale");
                    assert_eq!(original["body"]["status"], "completed");
                    assert_eq!(original["flags"]["training"], false);
                    // A sale is refunded or post-voided by at most one event.
                    assert_eq!(*linked_by.entry(target).or_insert(seq), seq);
                    match str_of(&link["reason"]) {
                        "return" => {
                            let line = int(&link["line"]);
                            let sold = lines_of(original, "item")
                                .into_iter()
                                .find(|l| int(&l["line"]) == line)
                                .expect("linked line exists");
                            assert!(sold.get("void").is_none() && sold.get("voids_line").is_none());
                            // Refund item lines come in the order of their links.
                            let back = lines_of(event, "item")[i];
                            assert_eq!(back["sku"], sold["sku"]);
                            assert_eq!(back["department"], sold["department"]);
                            assert_eq!(plain(&back["description"]), plain(&sold["description"]));
                            assert_eq!(back["unit_price"], sold["unit_price"]);
                            let q_back = milli(str_of(&back["quantity"]));
                            let q_sold = milli(str_of(&sold["quantity"]));
                            assert!(q_back < 0 && -q_back <= q_sold, "{event}");
                        }
                        "post_void" => {
                            assert_eq!(body["status"], "voided");
                            assert_eq!(body["kind"], "sale");
                            assert_eq!(body["totals"], original["body"]["totals"]);
                            assert_eq!(body["customer"], original["body"]["customer"]);
                            let (ours, theirs) = (
                                body["lines"].as_array().expect("lines"),
                                original["body"]["lines"].as_array().expect("lines"),
                            );
                            assert_eq!(ours.len(), theirs.len());
                            for (a, b) in ours.iter().zip(theirs) {
                                for field in
                                    ["line", "kind", "sku", "quantity", "extended", "amount"]
                                {
                                    assert_eq!(a[field], b[field], "post-void line differs");
                                }
                                if b["auth"].is_object() {
                                    assert_eq!(a["auth"]["status"], "reversed");
                                    assert_eq!(a["auth"]["code"], b["auth"]["code"]);
                                }
                            }
                            voids += 1;
                        }
                        other => panic!("unexpected link reason {other}"),
                    }
                }
                if body["kind"] == "return" {
                    refunds += 1;
                    // Partial: fewer lines came back than the sale had.
                    let target = int(&links[0]["pos_sequence"]);
                    let sold_lines = lines_of(sales[&target], "item")
                        .iter()
                        .filter(|l| l.get("void").is_none() && l.get("voids_line").is_none())
                        .count();
                    assert!(lines_of(event, "item").len() < sold_lines, "not partial");
                    assert!(links.iter().all(|l| l["reason"] == "return"));
                }
                if body["kind"] == "sale"
                    && body["status"] == "completed"
                    && event["flags"]["training"] == false
                {
                    sales.insert(seq, event);
                }
            }
            // One of each per block of 25 events.
            assert_eq!((refunds, voids), (400, 400), "{profile:?}");
        }
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(div_round(1500, 1000), 2);
        assert_eq!(div_round(1499, 1000), 1);
        assert_eq!(div_round(-1500, 1000), -2);
        assert_eq!(div_round(-1499, 1000), -1);
        assert_eq!(div_round(0, 7), 0);
        // 0.420 kg at 2.99/kg = 1.2558 -> 1.26
        assert_eq!(div_round(420 * 299, 1000), 126);
        assert_eq!(format_quantity(420, true), "0.420");
        assert_eq!(format_quantity(-1333, true), "-1.333");
        assert_eq!(format_quantity(3000, false), "3");
        assert_eq!(format_quantity(-1000, false), "-1");
        assert_eq!(format_rate(1900), "0.19");
        assert_eq!(format_rate(700), "0.07");
        assert_eq!(format_rate(875), "0.0875");
        assert_eq!(format_rate(1025), "0.1025");
    }

    #[test]
    fn calendar_math_round_trips() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2000-03-01"), Some(11_017));
        assert_eq!(
            parse_day("2024-02-29").map(civil_from_days),
            Some((2024, 2, 29))
        );
        for bad in [
            "2023-02-29",
            "2025-13-01",
            "2025-1-01",
            "20250314",
            "",
            "2025-03-1x",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
        for day in (-1000..30_000).step_by(7) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(951_782_400_000 + 3_723_004),
            "2000-02-29T01:02:03.004Z"
        );
    }

    #[test]
    fn bad_business_day_is_passed_through_without_panicking() {
        let mut generator = Generator::new(1, Profile::Restaurant, "", "not-a-day");
        for _ in 0..100 {
            let event = generator.next_event();
            assert_eq!(event["business_day"], "not-a-day");
            assert!(str_of(&event["occurred_at"]).starts_with("1970-01-01T07:"));
        }
    }

    #[test]
    fn catalogue_and_test_pans_are_what_they_claim() {
        for article in RETAIL_CATALOG.iter().chain(RESTAURANT_CATALOG.iter()) {
            if let Some(gtin) = article.gtin {
                let sum: u32 = gtin
                    .bytes()
                    .take(12)
                    .enumerate()
                    .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 1 { 3 } else { 1 })
                    .sum();
                assert_eq!(
                    u32::from(gtin.as_bytes()[12] - b'0'),
                    (10 - sum % 10) % 10,
                    "{gtin}"
                );
                assert!(!luhn_valid(gtin), "{gtin} would be masked as a card number");
            }
            assert!(article.tax < 2);
        }
        for data in [&RETAIL, &RESTAURANT] {
            assert!(
                data.catalog.iter().any(|a| a.tax == 0) && data.catalog.iter().any(|a| a.tax == 1)
            );
            assert!(data.catalog.iter().any(|a| !a.weighted && a.price >= 500));
            assert!(!data.open.is_empty() && data.operators.len() >= 2);
        }
        for pan in TEST_PANS {
            assert!(luhn_valid(pan.digits), "{}", pan.digits);
            for style in 0..3 {
                let written = spell_pan(pan.digits, style);
                assert!(
                    contains_test_pan(&json!({ "x": [format!("paid by {written}.")] })),
                    "{written}"
                );
            }
        }
        assert_eq!(spell_pan("378282246310005", 1), "3782 822463 10005");
        assert_eq!(spell_pan("4111111111111111", 2), "4111-1111-1111-1111");
        assert!(!contains_test_pan(
            &json!({ "gtin": "4006383395630", "n": 4111111 })
        ));
        assert!(contains_test_pan(&json!({ "n": 4111111111111111u64 })));
    }

    #[test]
    fn profile_parses_from_its_name() {
        assert_eq!("retail".parse::<Profile>(), Ok(Profile::Retail));
        assert_eq!("Restaurant".parse::<Profile>(), Ok(Profile::Restaurant));
        assert!(
            "grocery"
                .parse::<Profile>()
                .is_err_and(|e| e.contains("retail"))
        );
    }
}
