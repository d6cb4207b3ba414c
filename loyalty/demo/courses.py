"""The demo program's training catalogue (loyalty.demo.learning writes it): courses per product line of the demo's
catalogue (loyalty.demo.sales.LINES), each with 1–3 modules of 4–6 questions about water treatment, some courses
certifying. Plain data: loyalty.demo.program reads which modules each role may take to plan its people's history."""

from dataclasses import dataclass

from partners.constants import PartnerKind

ALL_ROLES = ("owner", "sales", "engineer", "foreman", "purchasing", "logistics")


@dataclass(frozen=True)
class QuestionSpec:
    text: str
    answers: tuple[tuple[str, bool], ...]  # (text, right?), in the order written
    explanation: str

    @property
    def is_multiple(self) -> bool:
        return sum(right for _, right in self.answers) > 1


@dataclass(frozen=True)
class ModuleSpec:
    key: str
    title: str
    minutes: int
    body: str
    questions: tuple[QuestionSpec, ...]
    media_url: str = ""


@dataclass(frozen=True)
class CourseSpec:
    title: str
    summary: str
    line: str  # a loyalty.demo.sales.LINES code, or "" for a course about no line
    modules: tuple[ModuleSpec, ...]
    roles: tuple[str, ...] = ()  # empty: everyone
    partner_kinds: tuple[str, ...] = ()
    certification_months: int | None = None


Q = QuestionSpec
R, W = True, False  # a right answer, a wrong one

COURSES = (
    CourseSpec(
        "Water softening",
        "How hardness forms, how an ion-exchange softener removes it, and how to fit and set up an AquaSoft Smart. "
        "Passing both modules certifies you on water softeners for two years.",
        "softeners",
        roles=("owner", "sales", "engineer", "foreman"),
        certification_months=24,
        modules=(
            ModuleSpec(
                "softening-fundamentals",
                "Water softening fundamentals",
                12,
                "Hard water carries calcium and magnesium dissolved from limestone and chalk. Heated, these minerals "
                "leave limescale in pipes, boilers and appliances: 1 mm of scale on a heating element costs about "
                "10 % more energy.\n\n"
                "An ion-exchange softener passes the water through resin beads that hold sodium ions. The beads swap "
                "them for calcium and magnesium, so the water leaves soft. When the resin is full, the softener "
                "regenerates: brine from the salt tank flushes the hardness out to the drain and loads the beads "
                "with sodium again.\n\n"
                "Hardness is measured in German degrees (°dH) or mg/l of calcium carbonate: up to 8.4 °dH is soft, "
                "8.4 to 14 medium, 14 to 21 hard and above 21 very hard.",
                (
                    Q("What makes water hard?",
                      (("Dissolved calcium and magnesium", R), ("Dissolved chlorine", W), ("Iron bacteria", W),
                       ("Sodium chloride", W)),
                      "Hardness is the calcium and magnesium the water dissolved from rock; heated, they form scale."),
                    Q("How does an ion-exchange softener remove hardness?",
                      (("Resin beads swap calcium and magnesium for sodium", R),
                       ("A membrane holds the minerals back", W), ("UV light breaks the minerals down", W),
                       ("A magnet keeps the minerals in suspension", W)),
                      "The resin takes up calcium and magnesium ions and releases sodium ions in their place."),
                    Q("What does a regeneration do?",
                      (("It flushes the resin with brine so it can take up hardness again", R),
                       ("It replaces the resin", W), ("It adds minerals back to the water", W),
                       ("It cleans the pipes after the softener", W)),
                      "Brine pushes the hardness off the beads to the drain and loads them with sodium again."),
                    Q("Which are signs of hard water in a customer's home? Choose all that apply.",
                      (("Limescale on taps and shower heads", R), ("Spots on glasses from the dishwasher", R),
                       ("Soap that hardly lathers", R), ("A smell of rotten eggs", W)),
                      "Scale, spots and poor lather come from hardness; a rotten-egg smell is hydrogen sulphide."),
                    Q("A water analysis shows 25 °dH. How hard is the water?",
                      (("Very hard", R), ("Soft", W), ("Medium", W), ("It cannot be said without the pH", W)),
                      "Above 21 °dH water is very hard: a softener pays for itself quickly."),
                ),
            ),
            ModuleSpec(
                "aquasoft-smart",
                "AquaSoft Smart: installation and app set-up",
                15,
                "Fit the AquaSoft Smart on the cold mains after the water meter and before the hot water cylinder, "
                "with the bypass valve so that the house keeps its water during a service. Leave the outside tap and "
                "a drinking water tap on hard water if the customer wishes.\n\n"
                "Run the drain hose and the overflow to a drain with an air gap: never below the water level, so "
                "that waste water can never be siphoned back.\n\n"
                "In the AquaPro app, enter the incoming hardness from your test and the number of people in the "
                "household, and connect the softener to the customer's Wi-Fi. The app then warns of low salt, a "
                "failed regeneration or a leak.",
                (
                    Q("Where is an AquaSoft Smart installed?",
                      (("On the cold mains after the water meter, before the hot water cylinder", R),
                       ("On the hot water line after the boiler", W), ("Under the kitchen sink only", W),
                       ("Before the water meter", W)),
                      "Softening the cold mains protects the cylinder, the boiler and every appliance after it."),
                    Q("Why fit the bypass valve?",
                      (("So that the house keeps its water while the softener is serviced", R),
                       ("To soften the water twice", W), ("To add salt automatically", W),
                       ("To measure the flow", W)),
                      "The bypass lets water round the softener during a service or a fault."),
                    Q("What does the app need to finish the set-up? Choose all that apply.",
                      (("The incoming water hardness", R), ("How many people live in the household", R),
                       ("A Wi-Fi connection for the alerts", R), ("The customer's bank details", W)),
                      "Hardness and household size set the regeneration; Wi-Fi lets the app send its warnings."),
                    Q("How must the drain hose run?",
                      (("To a drain with an air gap, never below the water level", R),
                       ("Sealed straight into the sewer pipe", W), ("Back into the salt tank", W),
                       ("Into the garden", W)),
                      "The air gap stops waste water from being siphoned back into the softener."),
                    Q("When does the app warn the customer? Choose all that apply.",
                      (("The salt runs low", R), ("A leak is detected", R), ("A regeneration failed", R),
                       ("The tap water is cold", W)),
                      "The alerts cover salt, leaks and regeneration faults; cold water is normal."),
                ),
            ),
        ),
    ),
    CourseSpec(
        "Reverse osmosis",
        "What a reverse osmosis membrane removes, how to size and maintain a PureFlow system, and what to check when "
        "it slows down. Passing both modules certifies you on reverse osmosis for a year.",
        "reverse-osmosis",
        certification_months=12,
        modules=(
            ModuleSpec(
                "ro-basics",
                "Reverse osmosis basics",
                10,
                "Under pressure, a reverse osmosis membrane lets water molecules through and holds back most "
                "dissolved salts, nitrate, heavy metals, bacteria and viruses. The rejected substances leave with "
                "the concentrate to the drain, which keeps the membrane from clogging.\n\n"
                "A sediment and a carbon prefilter protect the membrane: chlorine would destroy it. Output rises "
                "with inlet pressure and water temperature.\n\n"
                "The PureFlow RO-7 Plus adds a mineraliser after the membrane, which gives calcium and magnesium back "
                "for taste and a neutral pH.",
                (
                    Q("What does a reverse osmosis membrane hold back?",
                      (("Most dissolved salts, nitrate and bacteria", R), ("Only sand and rust", W),
                       ("Only chlorine", W), ("Nothing: it adds minerals", W)),
                      "The membrane passes water molecules and rejects most of what is dissolved in the water."),
                    Q("Why does an RO system need a carbon prefilter?",
                      (("Chlorine would destroy the membrane", R), ("To soften the water", W),
                       ("To add taste", W), ("It does not need one", W)),
                      "The carbon takes out chlorine, which attacks the thin-film membrane."),
                    Q("What raises an RO system's output? Choose all that apply.",
                      (("Higher inlet pressure", R), ("Warmer feed water", R), ("A new membrane", R),
                       ("A smaller storage tank", W)),
                      "Pressure, temperature and a clean membrane raise the flow; the tank only stores it."),
                    Q("What is the concentrate (waste water) for?",
                      (("It carries the rejected salts away so the membrane does not clog", R),
                       ("It cleans the storage tank", W), ("It is drinking water of a lower grade", W),
                       ("It cools the pump", W)),
                      "Without the concentrate flow, the salts would build up on the membrane."),
                    Q("Why does the PureFlow RO-7 Plus have a mineraliser?",
                      (("It gives calcium and magnesium back for taste and pH", R), ("It removes bacteria", W),
                       ("It protects the membrane", W), ("It measures the water quality", W)),
                      "Water from the membrane is nearly free of minerals; the mineraliser adds some back."),
                ),
            ),
            ModuleSpec(
                "ro-maintenance",
                "Membranes and maintenance",
                8,
                "Change the sediment, carbon and post-filters every year and the membrane every two to three years, "
                "depending on the water and how much the household uses.\n\n"
                "A TDS meter tells you how well the membrane still works: measure the tap water and the RO water; "
                "when the RO reading rises towards a fifth of the tap water's, the membrane is wearing out.\n\n"
                "Slow flow? Check the inlet pressure and the prefilters first, then the tank's air pressure.",
                (
                    Q("How often is an RO membrane usually changed?",
                      (("Every two to three years, depending on the water and use", R), ("Every month", W),
                       ("Never", W), ("Every ten years", W)),
                      "Membranes last two to three years; hard or dirty water shortens that."),
                    Q("What does a rising TDS reading of the RO water tell you?",
                      (("The membrane is wearing out", R), ("The water is getting softer", W),
                       ("The tank is full", W), ("The carbon filter is new", W)),
                      "More dissolved solids get through a worn membrane."),
                    Q("What is changed at the annual RO service? Choose all that apply.",
                      (("The sediment prefilter", R), ("The carbon prefilter", R), ("The post-filter", R),
                       ("The tap", W)),
                      "The filters are changed every year; the tap stays."),
                    Q("A customer says the RO flow is slow. What do you check first?",
                      (("The inlet pressure and the prefilters", R), ("The tap's colour", W),
                       ("The customer's water bill", W), ("The mineraliser's taste", W)),
                      "Low pressure and clogged prefilters are the usual causes of slow flow."),
                ),
            ),
        ),
    ),
    CourseSpec(
        "UV disinfection",
        "How UV-C light disinfects water, how to size and fit a UVGuard Pro safely, and how to deal with Legionella "
        "risk at home. Passing both modules certifies you on UV disinfection for a year.",
        "uv-disinfection",
        roles=("owner", "sales", "engineer", "foreman"),
        certification_months=12,
        modules=(
            ModuleSpec(
                "uv-sizing",
                "UV disinfection: sizing and safety",
                12,
                "UV-C light at 254 nm damages the DNA of bacteria, viruses and protozoa so that they cannot multiply. "
                "It adds nothing to the water and changes neither taste nor smell.\n\n"
                "The light must reach every microbe: cloudy water, iron, manganese and scale on the quartz sleeve "
                "shade it, so filter and soften first. Size the steriliser by the peak flow at the required dose "
                "(at least 40 mJ/cm²).\n\n"
                "Never look at a lit lamp: UV-C burns eyes and skin. Change the lamp every 12 months, even if it "
                "still glows.",
                (
                    Q("What does UV-C light do to bacteria and viruses?",
                      (("It damages their DNA so that they cannot multiply", R), ("It filters them out", W),
                       ("It adds chlorine", W), ("It boils them", W)),
                      "UV-C disables the microbes' DNA; the water is not changed otherwise."),
                    Q("Which water must be treated before a UV steriliser? Choose all that apply.",
                      (("Cloudy water", R), ("Water with iron or manganese", R),
                       ("Hard water that scales the quartz sleeve", R), ("Clear, soft mains water", W)),
                      "Anything that shades the light lets microbes through: filter and soften first."),
                    Q("How do you size a UV steriliser?",
                      (("By the peak flow at the required UV dose", R), ("By the number of taps", W),
                       ("By the pipe's colour", W), ("By the water temperature only", W)),
                      "The dose falls as the flow rises: size for the highest flow."),
                    Q("Why must you never look at a lit UV lamp?",
                      (("UV-C burns the eyes and the skin", R), ("It makes the lamp fail", W),
                       ("It is too bright to read the label", W), ("It is safe to look at", W)),
                      "Switch the steriliser off before you take the lamp out."),
                    Q("When is the UV lamp changed?",
                      (("Every 12 months, even if it still glows", R), ("When it stops glowing", W),
                       ("Every five years", W), ("Only when the water tastes odd", W)),
                      "The UV output fades long before the visible glow does."),
                ),
            ),
            ModuleSpec(
                "legionella",
                "Legionella risk in domestic systems",
                10,
                "Legionella bacteria multiply in water between 25 °C and 45 °C, in dead legs, rarely used outlets "
                "and hot water stored too cool. People fall ill by breathing in fine droplets, for example in a "
                "shower, not by drinking the water.\n\n"
                "Keep stored hot water at 60 °C and circulating water above 55 °C, remove dead legs, flush rarely "
                "used outlets weekly, and disinfect the cold supply or the circulation loop with UV after "
                "filtration.",
                (
                    Q("At which temperatures does Legionella multiply best?",
                      (("Between 25 °C and 45 °C", R), ("Below 10 °C", W), ("Above 60 °C", W),
                       ("Only at exactly 37 °C", W)),
                      "Warm, still water is where Legionella grows; above 60 °C it dies."),
                    Q("Which are Legionella risks in a home? Choose all that apply.",
                      (("Dead legs in the pipework", R), ("Hot water stored below 50 °C", R),
                       ("Outlets that are rarely used", R), ("Softened water", W)),
                      "Stagnant and lukewarm water are the risks; softening does not add any."),
                    Q("How do people catch Legionnaires' disease?",
                      (("By breathing in contaminated droplets, for example in a shower", R),
                       ("By drinking tap water", W), ("By touching a tap", W), ("From other people", W)),
                      "The bacteria infect the lungs through inhaled droplets."),
                    Q("Where is a UV steriliser fitted against Legionella in a home?",
                      (("On the cold supply or the circulation loop, after filtration", R),
                       ("On the drain", W), ("Inside the boiler", W), ("At the garden tap only", W)),
                      "UV treats the water flowing to the outlets; filtration keeps the light unshaded."),
                ),
            ),
        ),
    ),
    CourseSpec(
        "Filtration and water analysis",
        "Read a water analysis and choose the right ClearLine filter, cartridge and housing.",
        "filtration",
        modules=(
            ModuleSpec(
                "water-analysis",
                "Reading a water analysis",
                8,
                "Before you recommend anything, read the analysis: hardness decides on a softener, iron and "
                "manganese above 0.2 and 0.05 mg/l call for an iron filter, bacteria for UV, nitrate for reverse "
                "osmosis. A pH below 6.5 means acidic water that corrodes copper.\n\n"
                "TDS, the total dissolved solids, is a quick measure of everything dissolved in the water.",
                (
                    Q("What does TDS stand for?",
                      (("Total dissolved solids", R), ("Total drinking standard", W), ("Tap delivery speed", W),
                       ("Treated domestic supply", W)),
                      "TDS sums up everything dissolved in the water, in mg/l or ppm."),
                    Q("A well's analysis shows 0.8 mg/l of iron. What do you recommend?",
                      (("An iron and manganese filter such as the ClearLine iron filter", R),
                       ("A UV steriliser alone", W), ("Nothing: iron is harmless", W),
                       ("A bigger storage tank", W)),
                      "Iron above 0.2 mg/l stains and clogs; an iron filter takes it out."),
                    Q("Which values do you read before choosing a treatment? Choose all that apply.",
                      (("Hardness", R), ("Iron and manganese", R), ("Bacteria", R), ("The customer's water bill", W)),
                      "Each value points to a treatment; the bill does not."),
                    Q("What does a pH of 6.2 mean?",
                      (("The water is acidic and can corrode copper pipes", R), ("The water is very hard", W),
                       ("The water is perfect", W), ("The water contains bacteria", W)),
                      "Below pH 6.5 water is aggressive to copper and may need neutralising."),
                ),
            ),
            ModuleSpec(
                "cartridges",
                "Cartridges and housings",
                6,
                "A sediment cartridge catches sand, rust and silt by size (5 micron is common). A carbon block takes "
                "out chlorine taste and smell, many pesticides and organic compounds, but not hardness.\n\n"
                "Change cartridges at the interval on the label or when the pressure drop rises, whichever comes "
                "first; shut off the water and release the pressure before opening a housing.",
                (
                    Q("What does a 5 micron sediment cartridge remove?",
                      (("Sand, rust and silt", R), ("Dissolved salts", W), ("Hardness", W), ("Viruses", W)),
                      "It sieves particles; what is dissolved passes through."),
                    Q("What does a carbon block remove? Choose all that apply.",
                      (("Chlorine taste and smell", R), ("Many pesticides", R), ("Organic compounds", R),
                       ("Hardness", W)),
                      "Carbon adsorbs chlorine and organics; hardness needs a softener."),
                    Q("When is a BigBlue cartridge changed?",
                      (("At the label's interval or when the pressure drop rises, whichever comes first", R),
                       ("Only when the water turns brown", W), ("Every five years", W), ("Never", W)),
                      "A clogged cartridge starves the house of pressure and can grow bacteria."),
                    Q("What do you do before opening a filter housing?",
                      (("Shut off the water and release the pressure", R), ("Nothing", W),
                       ("Open it under pressure to flush it", W), ("Turn up the pressure", W)),
                      "The housing is under mains pressure until you release it."),
                ),
            ),
        ),
    ),
    CourseSpec(
        "Selling water treatment",
        "How to talk to homeowners about their water, from the test to the service contract.",
        "",
        roles=("owner", "sales", "purchasing"),
        partner_kinds=(PartnerKind.DEALER, PartnerKind.DISTRIBUTOR, PartnerKind.RESELLER, PartnerKind.INSTALLER),
        modules=(
            ModuleSpec(
                "selling-homeowners",
                "Selling water treatment to homeowners",
                10,
                "Start with the customer's water and what bothers them: test the hardness on the spot and ask about "
                "scale, spots, taste and smell. Then show what the right system changes for them: less scale and "
                "lower energy bills, appliances that last longer, better tasting water.\n\n"
                "Softened water contains a little sodium; a hard-water drinking tap or an RO system serves drinking "
                "water. Offer the service contract with the installation: that is when customers say yes.",
                (
                    Q("What is the best first step with a homeowner?",
                      (("Test their water and ask what bothers them", R),
                       ("Show the most expensive system", W), ("Talk about the warranty", W),
                       ("Send a brochure", W)),
                      "A test on the spot makes the problem visible and the advice personal."),
                    Q("Which arguments matter most to homeowners? Choose all that apply.",
                      (("Less limescale and lower energy bills", R), ("Better tasting water", R),
                       ("Appliances that last longer", R), ("The product's part number", W)),
                      "Customers buy what changes for them, not part numbers."),
                    Q("A customer worries about salt in softened water. What is true?",
                      (("It contains a little sodium; a hard-water tap or an RO system can serve drinking water", R),
                       ("It is salty like sea water", W), ("It contains no sodium at all", W),
                       ("It is unsafe to drink", W)),
                      "The sodium added is small, and a separate drinking water tap answers the concern."),
                    Q("When do you offer a service contract?",
                      (("With the installation", R), ("A year later", W), ("Only when something breaks", W),
                       ("Never", W)),
                      "At the sale the value of regular service is clearest."),
                ),
            ),
        ),
    ),
    CourseSpec(
        "Service that renews itself",
        "Annual service visits customers want again, and the kits to take.",
        "spare-parts",
        roles=("owner", "engineer", "foreman", "logistics"),
        modules=(
            ModuleSpec(
                "service-contracts",
                "Service contracts that renew themselves",
                8,
                "Customers renew a service contract that reminds them before the visit, states its price in advance "
                "and leaves a short report of what was done. Book the next visit before you leave.\n\n"
                "Take the right kit: the softener service kit (brine tank clean, injector and seals), the RO kit "
                "(three filters) or the UV kit (lamp and sleeve O-rings).",
                (
                    Q("What makes customers renew a service contract? Choose all that apply.",
                      (("A reminder before the visit is due", R), ("A short report of what was done", R),
                       ("A price known in advance", R), ("Visits at random times", W)),
                      "Reliability and clarity make renewing an easy yes."),
                    Q("When is the best moment to book the next visit?",
                      (("Before you leave the current visit", R), ("When the customer calls with a fault", W),
                       ("Never: let the customer decide", W), ("At the end of the year", W)),
                      "A visit booked on the spot is a visit kept."),
                    Q("What belongs to an annual softener service? Choose all that apply.",
                      (("Cleaning the brine tank", R), ("Checking the injector and seals", R),
                       ("Testing the hardness after the softener", R), ("Replacing the water meter", W)),
                      "The softener kit covers the tank, the injector, the seals and a test."),
                    Q("What do you take to an annual UV service?",
                      (("The UV service kit with a new lamp and sleeve O-rings", R), ("A new membrane", W),
                       ("Salt tablets", W), ("Nothing", W)),
                      "The lamp is changed every year; the O-rings keep the sleeve sealed."),
                ),
            ),
        ),
    ),
)  # fmt: skip

MODULES = {module.key: (course, module) for course in COURSES for module in course.modules}


def modules_for(role: str, partner_kind: str) -> list[str]:
    """The keys of the modules a person in `role` at a partner of `partner_kind` may take, in catalogue order."""
    return [
        module.key
        for course in COURSES
        if (not course.roles or role in course.roles)
        and (not course.partner_kinds or partner_kind in course.partner_kinds)
        for module in course.modules
    ]
