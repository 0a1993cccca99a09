"""Readable names for the codes the APIs answer (fields, operators, benefit kinds...).

Each is an English message id, translated by the catalogs like every other text of
the pages (``N_`` only marks it for extraction); a code not listed shows as itself.
"""

from __future__ import annotations

from reelpolicy_portal.domain.messages import N_

FIELDS = {
    "enterprise.established_on": N_("date of establishment"),
    "enterprise.region_code": N_("registered region"),
    "enterprise.kind": N_("kind of enterprise"),
    "enterprise.employees": N_("employees"),
    "enterprise.registered_capital_cny": N_("registered capital"),
    "enterprise.sme": N_("small or medium-sized enterprise"),
    "production.region_code": N_("region of production"),
    "production.filming_region_codes": N_("filming regions"),
    "production.episodes": N_("episodes"),
    "production.minutes_per_episode": N_("minutes per episode"),
    "production.budget_cny": N_("budget"),
    "production.promotion_budget_cny": N_("promotion budget"),
    "production.release_date": N_("release date"),
    "production.platforms": N_("platforms"),
    "production.themes": N_("themes"),
    "production.awards": N_("awards"),
    "production.grants.issuer_levels": N_("grants received"),
    "production.metrics.views": N_("views"),
    "production.metrics.rating": N_("rating"),
    "production.content_status": N_("content review status"),
    "production.overseas.market_count": N_("overseas markets"),
}

OPERATORS = {
    "eq": N_("is"),
    "ne": N_("is not"),
    "gte": N_("is at least"),
    "lte": N_("is at most"),
    "gt": N_("is more than"),
    "lt": N_("is less than"),
    "within": N_("is within"),
    "any_within": N_("any is within"),
    "contains_any": N_("contains any of"),
    "exists": N_("is known"),
}

RESULTS = {"pass": N_("met"), "fail": N_("not met"), "unknown": N_("not known yet")}

GROUPS = {
    "all": N_("All of these"),
    "any": N_("Any of these"),
    "not": N_("None of these"),
}

STATUSES = {
    "eligible": N_("Eligible"),
    "unknown": N_("Information missing"),
    "ineligible": N_("Not eligible"),
}

VALUES: dict[bool | None, str] = {True: N_("yes"), False: N_("no"), None: N_("not known")}

SUBJECTS = {"enterprise": N_("The enterprise"), "production": N_("Production")}

ISSUER_LEVELS = {
    "national": N_("National"),
    "provincial": N_("Provincial"),
    "municipal": N_("Municipal"),
    "district": N_("District"),
    "platform": N_("Platform"),
}

BASES = {
    "fixed": N_("fixed amount"),
    "up_to": N_("up to"),
    "discretionary": N_("discretionary"),
    "matching": N_("matching"),
    "non_monetary": N_("non-monetary"),
    "percentage_of_benefit": N_("percentage of another benefit"),
    "percentage_of_field": N_("percentage of a figure"),
}

BENEFIT_KINDS = {
    "aigc_hardware_and_subsidy": N_("AIGC hardware and subsidy"),
    "content_pre_review": N_("content pre-review"),
    "creation_park": N_("creation park"),
    "creative_guidance": N_("creative guidance"),
    "creator_cash_incentive": N_("creator cash incentive"),
    "enterprise_services": N_("enterprise services"),
    "event_subsidy": N_("event subsidy"),
    "filming_space": N_("filming space"),
    "filming_subsidy": N_("filming subsidy"),
    "matching_grant": N_("matching grant"),
    "office_purchase_subsidy": N_("office purchase subsidy"),
    "office_rent_subsidy": N_("office rent subsidy"),
    "one_stop_platform": N_("one-stop platform"),
    "overseas_distribution_support": N_("overseas distribution support"),
    "production_hub": N_("production hub"),
    "programme_support": N_("programme support"),
    "project_subsidy": N_("project subsidy"),
    "promotion_funding": N_("promotion funding"),
    "reward": N_("reward"),
    "reward_bonus": N_("reward bonus"),
    "startup_rent_subsidy": N_("start-up and rent subsidy"),
    "strategic_cooperation": N_("strategic cooperation"),
    "studio_park": N_("studio park"),
    "talent_cultivation": N_("talent cultivation"),
    "talent_subsidy": N_("talent subsidy"),
    "themed_activity": N_("themed activity"),
    "traffic_support": N_("traffic support"),
}


def field(code: str) -> str:
    return FIELDS.get(code, code)


def operator(code: str) -> str:
    return OPERATORS.get(code, code)


def result(code: str) -> str:
    return RESULTS.get(code, code)


def group(code: str) -> str:
    return GROUPS.get(code, code)


def status(code: str) -> str:
    return STATUSES.get(code, code)


def subject(code: str) -> str:
    return SUBJECTS.get(code, code)


def issuer_level(code: str) -> str:
    return ISSUER_LEVELS.get(code, code)


def basis(code: str) -> str:
    return BASES.get(code, code)


def benefit_kind(code: str) -> str:
    return BENEFIT_KINDS.get(code, code)
