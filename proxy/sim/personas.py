"""Personas of the campaign simulator: who sends what, how often, from where (distillation.md §1.9, §1.10).

Benign: interactive chat, coding agents (tools, long contexts, a shared agent system prompt), heavy legitimate
automation (one org's CI/eval fleet resending fixed templates on a schedule, some with logprobs or as a
grader), batch jobs, multilingual users, users who ask about reasoning innocently, users of popular
third-party apps built on the API (``app_user``: many unrelated accounts and orgs sending one app's fixed
wrapper around their own content, reasoning as a per-user setting) and, outside the default mix, users of an
app that always turns reasoning on (``app_forced``).
Attackers: hydra clusters (many accounts, shared templates and /24s, mixed with resold customer traffic),
low-and-slow accounts (~26 requests/day on residential addresses), CoT-elicitation jailbreakers, logprob
harvesters, release chasers. Attackers sit on every tier, ``trusted`` included (S14).

Every random choice comes from a ``random.Random`` seeded by (seed, persona, account index), so traffic is
reproducible for a seed and independent of the persona mix order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

DAY = 86400.0
REASONING_MODEL = "deepseek-reasoner"
PLAIN_MODEL = "gpt-plain-mini"  # the fake model answers without reasoning for "plain" names
NEW_MODEL = "reasoner-next"

BENIGN = ("chat", "coding_agent", "automation", "batch", "multilingual", "reasoning_curious", "app_user", "app_forced")
ATTACKERS = ("hydra", "low_slow", "jailbreaker", "logprob", "release_chaser")
PERSONAS = BENIGN + ATTACKERS
DEFAULT_MIX: dict[str, float] = {
    "chat": 0.34,
    "coding_agent": 0.10,
    "automation": 0.06,
    "batch": 0.03,
    "multilingual": 0.10,
    "reasoning_curious": 0.06,
    # users of third-party apps built on the API (bring-your-own-key writing/homework/document tools): taken
    # from chat's share, so every other persona keeps its accounts and traffic for a seed
    "app_user": 0.10,
    "hydra": 0.12,
    "low_slow": 0.03,
    "jailbreaker": 0.02,
    "logprob": 0.02,
    "release_chaser": 0.02,
}

TOPICS = (
    "photosynthesis",
    "the French revolution",
    "binary search trees",
    "compound interest",
    "the Krebs cycle",
    "TCP congestion control",
    "Roman aqueducts",
    "supply and demand",
    "quantum tunnelling",
    "sourdough baking",
    "the Pythagorean theorem",
    "vector databases",
    "medieval trade routes",
    "the water cycle",
    "Rust lifetimes",
    "marathon training",
    "plate tectonics",
    "GDPR compliance",
    "jazz harmony",
    "the immune system",
)
ASKS = (
    "Explain {t} to a beginner.",
    "What are the main ideas behind {t}?",
    "Give me three facts about {t}.",
    "Write a short summary of {t} for my notes.",
    "How would you teach {t} to a 12 year old?",
    "What are common misconceptions about {t}?",
    "Compare {t} with something from everyday life.",
    "Draft an email to my team about {t}.",
    "Make a quiz with {n} questions on {t}.",
    "What is {n} times {m}, and how does that relate to {t}?",
)
SHORT = ("hi", "thanks!", "hello", "ok", "can you help me?", "thank you so much")
MULTI = (
    "¿Puedes explicarme {t} de forma sencilla?",
    "Explique-moi {t} en quelques phrases.",
    "Kannst du mir {t} einfach erklären?",
    "Você pode explicar {t} de forma simples?",
    "请简单解释一下{t}。",
    "{t}について簡単に説明してください。",
    "{t}에 대해 쉽게 설명해 주세요.",
    "Объясни, пожалуйста, {t} простыми словами.",
)
OSS_TOOL_SYSTEM = "You are commitgen, an assistant that writes conventional commit messages from diffs."
OSS_TOOL_ASK = (
    "Write a conventional commit message for the following diff. Use the imperative mood, max 72 "
    "characters in the subject line.\n\ndiff --git a/src/{f}.py b/src/{f}.py\n+    return {n}\n"
)
AGENT_SYSTEMS = (
    "You are CodePilot, an autonomous coding agent. Use the tools to read, edit and test the repository.",
    "You are an expert software engineer working in the user's terminal. Use tools to inspect files and run commands.",
    "You are Devbot. Plan, then call tools. Never edit files you have not read.",
)
AGENT_TASKS = (
    "Fix the failing test in tests/test_{f}.py",
    "Add type hints to src/{f}.py",
    "Refactor {f} into smaller functions",
    "Why does {f} raise KeyError on line {n}?",
    "Write a migration for the {f} table",
)
FILES = ("parser", "billing", "auth", "cache", "router", "models", "schema", "worker", "queue", "views")
CAMPAIGN_SYSTEMS = (
    "You are a world-class competition mathematician. Be rigorous before answering.",
    "You are a senior software engineer. Think through the problem in depth before writing code.",
    "You are an expert tutor. Work through every problem with great care before you answer.",
    "You are a precise analyst. Consider all cases carefully and reason step by step.",
)
CAMPAIGN_ASKS = (
    "Solve the following problem. Think through every step carefully and give the final answer in a box. Problem: {p}",
    "Implement the following function and reason about edge cases and complexity before writing code. Task: {p}",
    "Answer the question below with a complete derivation; consider alternative approaches first. Question: {p}",
    "Work through this exercise thoroughly, checking each intermediate result before moving on. Exercise: {p}",
)
PROBLEMS = (
    "find all integers x with x^2 - {n}x + {m} = 0",
    "how many paths of length {n} exist on a {m}x{m} grid",
    "parse a CSV line with quoted fields of up to {n} columns",
    "prove that {n}^{m} - 1 is divisible by {n} - 1",
    "merge {n} sorted lists of total length {m} efficiently",
    "the probability that {n} dice sum to {m}",
)
# low-and-slow campaigns run their own templates (not the hydra clusters')
SLOW_SYSTEMS = (
    "You are a helpful assistant with strong analytical skills. Answer accurately.",
    "Act as a domain expert and answer the user's question thoroughly.",
)
SLOW_ASKS = (
    "Please help with the following task and explain how you arrive at the result. Task: {p}",
    "I need a careful answer to this one, with the intermediate results spelled out: {p}",
)
AUTOMATION_TEMPLATES = (
    "Evaluate the model answer against the reference. Reference: {n}. Answer: {m}. Reply PASS or FAIL.",
    "Run regression prompt #{n}: summarise the changelog entry and list breaking changes.",
    "Grade the following responses on a scale of 1 to 10 using the rubric. Response A: {n}. Response B: {m}.",
    "Question {n}: what is {m} plus {n}? Answer:",
)
BATCH_TEMPLATES = (
    "Classify the following support ticket as billing, bug or feature request. Ticket #{n}: my invoice shows {m} seats.",  # noqa: E501
    "Extract the company name and amount from this invoice line: ACME-{n} paid {m} EUR.",
)
# Third-party apps built on the API: each sends its own fixed system prompt and wrapper around the user's
# content, from its users' own accounts (bring your own key), so one template arrives from many unrelated
# accounts and orgs on unrelated networks. (name, system, wrapper, user agent, follow-up share). StepSolver's
# wrapper is deliberately close to the low-and-slow campaign's ("explain how you arrive at ...").
APPS = (
    (
        "quillmate",
        "You are Quillmate, a writing assistant inside a note-taking app. Keep the author's voice and language.",
        "Improve the clarity and flow of the following passage and briefly explain the main changes you made. "
        "Passage: {t} is something I keep coming back to in my notes, and I want {n} words on it.",
        "Quillmate/3.2 openai-node/4.2",
        0.35,
    ),
    (
        "stepsolver",
        "You are StepSolver, a patient homework helper for students. Show your work.",
        "Solve the following problem and explain how you arrive at each intermediate result. Problem: {p}",
        "StepSolver/1.8 (iOS) openai-swift/0.9",
        0.0,
    ),
    (
        "docask",
        "You are DocAsk, a browser extension that answers questions about the page the user is reading.",
        "Answer the question using only the document below and say which passage supports your answer. "
        "Question: what does section {n} say about {t}? Document: (page text, {m} words)",
        "DocAsk/0.14 Mozilla/5.0",
        0.1,
    ),
)
# An app that always runs with reasoning on (no per-user setting): outside the default mix; operators who have
# one add its prefix to lists.known_app_prefixes (docs/rules-pack.md).
FORCED_APP = (
    "tutorbot",
    "You are TutorBot, a maths tutor. Think carefully and check every step before answering.",
    "Work through the following exercise step by step and explain each intermediate result to the student. "
    "Exercise: {p}",
    "TutorBot/2.0 openai-python/1.54",
    0.0,
)
FOLLOW_UPS = ("Make it shorter.", "Can you explain that last part again?", "Thanks, now in a more formal tone.")


@dataclass
class Account:
    id: str
    persona: str
    tier: str
    org: str
    ip: str
    user_agent: str
    rate: float  # requests per day
    start: float = 0.0  # seconds from the simulation start when the account becomes active
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def attacker(self) -> bool:
        return self.persona in ATTACKERS


def pick_tier(rng: random.Random, weights: tuple[float, float, float]) -> str:
    return rng.choices(("trusted", "standard", "restricted"), weights=weights)[0]


def fill(rng: random.Random, s: str) -> str:
    return s.format(
        t=rng.choice(TOPICS),
        n=rng.randint(2, 999),
        m=rng.randint(2, 999),
        f=rng.choice(FILES),
        p=rng.choice(PROBLEMS).format(n=rng.randint(2, 99), m=rng.randint(2, 99)),
    )
