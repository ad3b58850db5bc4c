"""Text: transcripts from phrase banks; answer quality carries q, a background sentence S."""

from __future__ import annotations

import numpy as np

from fairviz.data.synthetic._interviews import _STREAM_TEXT, _child_rng, _mix

_OPENERS = (
    "Thanks for having me today.",
    "Hello, and thank you for the invitation.",
    "Good morning, I am glad to be here.",
    "Hi, thanks for taking the time to talk with me.",
    "Thank you, it is nice to meet you.",
)
_ROLES = (
    "software developer", "project coordinator", "data analyst", "sales associate",
    "customer service lead", "operations assistant", "marketing specialist", "accountant",
)
_ROLE_TEMPLATES = (
    "I have worked as a {role} for {years} years.",
    "For the last {years} years I have been a {role}.",
    "Currently I work as a {role}, and I have done that for {years} years.",
)
# Answer quality levels: 0 vague, 1 concrete, 2 specific example with a measured result.
_ANSWERS = (
    (
        "I am a hard worker and I always give my best.",
        "I think I am a good team player.",
        "I like challenges and I learn quickly.",
        "People say I am reliable and friendly.",
        "I try to do what is asked of me.",
        "I am motivated and I want to grow.",
        "I usually get things done somehow.",
        "I have done many different tasks over the years.",
    ),
    (
        "I often help my colleagues when a deadline is close.",
        "In my last job I handled customer requests every day.",
        "I organised the weekly planning meeting for my team.",
        "I prepared reports for my manager each month.",
        "I learned a new database system on the job.",
        "I worked with another department on a shared project.",
        "I trained two new colleagues when they joined.",
        "I kept our project documentation up to date.",
    ),
    (
        "For example, I led a team of five that rebuilt our billing process and cut errors by thirty percent.",
        "Last year I automated our monthly report, which saved the team about ten hours a week.",
        "I designed a new onboarding checklist, and new hires reached full speed two weeks sooner.",
        "When a key client threatened to leave, I set up weekly check-ins and we renewed the contract for two more years.",
        "I analysed our support tickets, found the three most common causes, and reduced the backlog by half.",
        "I negotiated with two suppliers and lowered our costs by twelve percent without delays.",
        "I proposed a testing routine that caught defects earlier; customer complaints fell by forty percent.",
        "I mentored three junior colleagues, and two of them were promoted within a year.",
    ),
)
_BACKGROUND_NEUTRAL = (
    "In my free time I enjoy hiking and reading.",
    "Outside work I volunteer at the local library.",
    "I like cooking and trying new recipes.",
    "On weekends I play chess with friends.",
    "I am learning to play the piano.",
    "I enjoy travelling and meeting new people.",
)
# Group-linked phrases (the proxy of S in text, like the résumé case where "women's" was penalised).
_BACKGROUND_GROUP = (
    (  # group 0 (unprivileged)
        "Outside work I captain the women's chess club.",
        "I volunteer with a women's coding network.",
        "I chaired the women's engineering society at university.",
        "I play in a women's football league on weekends.",
        "I organise events for a women in business group.",
        "I coach the girls' basketball team at my old school.",
    ),
    (  # group 1 (privileged)
        "Outside work I captain the men's rugby team.",
        "I was treasurer of the men's rowing club at university.",
        "I play in a men's football league on weekends.",
        "I am a member of the local gentlemen's golf society.",
        "I coach the boys' basketball team at my old school.",
        "I organise the fraternity alumni meetings.",
    ),
)
_CLOSERS = (
    "I would be happy to bring this experience to your company.",
    "I am looking forward to your questions.",
    "That is a short summary of my background.",
    "I hope this gives you a good picture of me.",
)
_N_ANSWERS = 3


# k > 2 groups: one fictitious community per group (no real-world group is named or implied).
_K_COMMUNITIES = ("Amberly", "Brennock", "Castelmar", "Dunholm", "Evenwood", "Farrowgate", "Glenmere", "Hollins")
_K_TEMPLATES = (
    "Outside work I volunteer with the {c} community association.",
    "I play in the {c} neighbourhood football league on weekends.",
    "I help organise the {c} cultural festival every year.",
    "I sing in the {c} community choir.",
    "I mentor students through the {c} heritage society.",
    "I coach a youth team at the {c} community centre.",
)
MAX_GROUPS = len(_K_COMMUNITIES)


def _group_bank(s: int, k: int) -> tuple[str, ...]:
    if k == 2:
        return _BACKGROUND_GROUP[s]
    return tuple(tpl.format(c=_K_COMMUNITIES[s]) for tpl in _K_TEMPLATES)


def _make_text(seed: int, i: int, q: float, s: int, st: dict[str, float], k: int = 2) -> str:
    rng = _child_rng(seed, _STREAM_TEXT, i)
    e_sig = rng.standard_normal()
    level_latent = _mix(st["text_signal"], q, e_sig)
    levels = np.digitize(level_latent + 0.35 * rng.standard_normal(_N_ANSWERS), [-0.45, 0.45])
    answers = [_ANSWERS[lv][k] for lv, k in zip(levels, rng.choice(8, size=_N_ANSWERS, replace=False))]
    linked = rng.random() < st["text_shortcut"]
    bank = _group_bank(s, k) if linked else _BACKGROUND_NEUTRAL
    background = bank[rng.integers(len(bank))]
    role = _ROLE_TEMPLATES[rng.integers(len(_ROLE_TEMPLATES))].format(
        role=_ROLES[rng.integers(len(_ROLES))], years=int(rng.integers(2, 12))
    )
    parts = [_OPENERS[rng.integers(len(_OPENERS))], role, *answers]
    parts.insert(int(rng.integers(2, len(parts) + 1)), background)
    parts.append(_CLOSERS[rng.integers(len(_CLOSERS))])
    return " ".join(parts)
