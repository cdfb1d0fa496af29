"""Phrase and pattern tables of ``signals``: the built-in reasoning-elicitation phrase families (RE2, run in
the request's shared pass with the concept detector's gate), the grader and own-artefact patterns, the template
skeleton's byte tables and the language guesser's stop words and scripts. ``signals`` re-exports every name.
"""

from __future__ import annotations

from proxy.policy import cot as cot_detector
from proxy.policy.matchers import PARTS, PatternSet

# Reasoning-elicitation phrase families (distillation.md §4), multilingual, RE2 syntax, case-insensitive.
_NOUN = (
    r"(reasoning|thinking|thoughts?|chain[- ]of[- ]thoughts?|\bcot\b|scratch ?pad|inner monologue|"
    r"internal monologue|thought process|reasoning (trace|steps|tokens))"
)
_TAG = r"<\s*/?\s*(think|thinking|reasoning|scratchpad|thought|thoughts|reflection)\s*>"
# the model addressed: second person, in the languages of the phrasings (RE2's \b is ASCII-only: the non-ASCII
# pronouns need no boundary, or come with a Latin one)
_YOU = (
    r"(\b(you|your|yours|yourself|u|ur|tu|tus|ta|tes|vous|votre|vos|dein\w*|dich|dir|voc[eê]|seu|sua|tuo|tua|jij"
    r"|jouw|uw)\b|你|您|あなた|당신|너의|네가|ты|вы|тво|ваш)"
)
COT_FAMILIES: dict[str, tuple[str, ...]] = {
    "verbatim": (
        r"\b(show|reveal|output|print|repeat|dump|display|share|write out|transcribe|copy|paste|expose|leak|"
        r"give me|tell me)\b.{0,40}" + _NOUN,
        r"\b(verbatim|word for word|word-for-word|unfiltered|unredacted|raw|hidden|internal|private|"
        r"unedited|full|complete|exact)\s+(\w+\s+)?" + _NOUN,
        r"\b(muestra|muéstrame|revela|repite|escribe|copia)\b.{0,40}"
        r"(razonamiento|pensamiento|cadena de pensamiento)",
        r"\b(montre|montrez|révèle|révélez|répète|répétez|écris|écrivez|affiche|affichez|donne|donnez)\b.{0,40}"
        r"(raisonnement|réflexion|pensées|chaîne de pensée)",
        r"\b(zeig|gib|wiederhol|schreib|verrat|offenleg)\w*\b.{0,40}(gedankengang|denkprozess|überlegungen|"
        r"gedankenkette|denkweg)",
        r"\b(mostre|mostra|revele|repita|escreva)\b.{0,40}(raciocínio|pensamento|cadeia de pensamento)",
        r"(展示|显示|输出|给出|重复|写出|告诉我|透露|公开|打印).{0,20}(思考过程|推理过程|思维链|内部推理|完整推理|思考内容|推理步骤)",
        r"(完整|原始|逐字|内部|隐藏)的?(思考|推理|思维链)",
        r"(покажи|покажите|выведи|повтори|напиши|раскрой)\S*.{0,40}"
        r"(рассуждени|ход\S* мысл|цепочк\S* мысл|размышлени)",
        r"(思考過程|推論過程|思考の連鎖|内部の推論).{0,20}(見せ|表示|出力|書き出|教え)",
        r"(사고 과정|추론 과정|생각의 사슬).{0,20}(보여|출력|알려)",
    ),
    "continue": (
        r"\b(continue|resume|finish|complete)\b.{0,20}\b(your|the|this)\s+" + _NOUN,
        r"\b(start|begin)\s+(your\s+)?(answer|response|reply|output)\s+with\s+.{0,10}\b(my|the|your)\s+"
        + _NOUN,
        r"\bpick up where\b.{0,30}" + _NOUN,
    ),
    "translate": (
        r"\btranslate\b.{0,30}" + _NOUN,
        r"\b(think|reason)\s+(only\s+)?in\s+(english|chinese|french|spanish|german|russian|japanese|korean)\b",
        r"\b(language of|which language)\b.{0,30}\b(thinking|reasoning)\b",
        r"(用中文|用英文|用英语)(思考|推理)",
    ),
    "encode": (
        r"\b(base-?64|rot-?13|hex(adecimal)?|morse|caesar|reversed|backwards|leetspeak)\b.{0,40}" + _NOUN,
        _NOUN + r".{0,40}\b(base-?64|rot-?13|hex encod\w*|morse|caesar cipher)",
    ),
    "wrap": (
        r"\b(put|place|wrap|include|insert|embed|enclose|paste)\b.{0,30}"
        + _NOUN
        + r".{0,40}\b(code block|json|xml|yaml|field|inside (the|your) (answer|response)|in (the|your) "
        r"(answer|response|output|final answer))",
    ),
    # a reasoning tag in a request to THIS model: second person near the tag, or its reply told to open with it.
    # A tag alone is mostly the user's own software ("a parser that buffers tokens until </think>", "our harness
    # ignores <reasoning> tags", "折叠 <think> 标签"): every blind benign set had such prompts, none addressed "you".
    "tags": (
        _YOU + r"[^\n]{0,120}" + _TAG,
        _TAG + r"[^\n]{0,120}" + _YOU,
        r"\b(start|begin|open|prefix|preface)\w*\b[^\n]{0,40}\bwith\b[^\n]{0,20}" + _TAG,
        # a prefill: the model's thinking opened and left open, with an imperative to go on writing it
        r"\b(continue|keep going|keep writing|carry on|go on|resume|pick up)\b(?s:.{0,160})"
        r"(^|\n)\s*<\s*(think|thinking|reasoning|scratchpad|thought|thoughts|reflection)\s*>[^<]{12,}$",
    ),
    "authority": (
        r"\[?\s*system override\s*\]?",
        r"\bdeveloper (mode|note|override)\b",
        r"--no-safety",
        r"\b(admin(istrator)?|maintenance|debug) (mode|override)\b",
        # a fake configuration or tool result switching reasoning visibility on ("show_hidden_reasoning: true",
        # "reasoning_visibility: public"): key-value settings in a prompt, the key joined like an identifier
        r"\b(show|expose|reveal|display|disclose|unhide|print|dump|stream)_(\w+_)?(reasoning|thinking|thoughts?|cot|scratchpad|"
        r"chain_of_thought)\b\"?\s*[:=]\s*\"?(true|on|yes|1|public|visible|enabled|full|raw|verbatim|all)\b",
        r"\b(reasoning|thinking|thoughts?|cot|scratchpad|chain_of_thought)_(visibility|visible|shown|exposed|display"
        r"|public)\"?\s*[:=]\s*\"?(true|on|yes|1|public|visible|enabled|full|raw|verbatim|all)\b",
        r"\bi am (a|an|the) (developer|engineer|admin|administrator) "
        r"(of|at|for) (this|openai|anthropic|google)",
        r"\b(openai|anthropic|google deepmind|google) (staff|employee|engineer|team)\b.{0,40}"
        r"\b(authori[sz]ed|permission|allowed)",
    ),
    "dataset": (
        # a dataset pretext AND a request to produce the traces ("distilling reasoning models" is a topic)
        r"\b(training data|dataset|fine[- ]?tun(e|ing)|distill(ation|ing)?|\bsft\b|teacher model|student model|"
        r"corpus)\b.{0,80}\b(write|output|generate|produce|give|print|dump|include|create|provide|return|show)\b"
        r".{0,60}\b(reasoning|thinking|chain[- ]of[- ]thought|traces?|rationales?)\b",
        r"\b(write|output|generate|produce|give|print|dump|include|create|provide|return)\b.{0,60}"
        r"\b(reasoning|thinking|chain[- ]of[- ]thought) (traces?|data)\b.{0,60}\b(training|dataset|fine[- ]?tun)",
        r"\b(generate|create|produce|write|build|make)\s+(\w+\s+)?(training data|dataset|sft data|fine[- ]?tuning "
        r"data)\b.{0,80}\b(reasoning|thinking|chain[- ]of[- ]thought|thought process|rationales?)\b",
    ),
    "rationalise": (
        r"\b(here is|here's|given|below is|this is|i have)\s+(the|an|my|a)?\s*(final\s+|correct\s+)?"
        r"(answer|solution|response|result)\b.{0,300}\b(explain|write|reconstruct|articulate|imagine|derive|"
        r"produce|generate|show)\b.{0,40}\b(reasoning|steps|thought process|chain of thought|derivation)",
        r"\b(imagine|articulate|reconstruct|reverse[- ]engineer)\b.{0,40}\b(internal\s+)?(reasoning|thought "
        r"process)\b.{0,40}\b(behind (this|that|the|your|my|it)\b(\s+(given|final|correct))?(\s+(answer|solution|result"
        r"|response|output|verdict|conclusion|label))?|that (led|produced|leads))",
        r"\b(reasoning|thought process|steps)\s+(that|which)\s+(led|produced|leads|lead|would lead)\s+to\s+"
        r"(this|the|that|a)\s+(given\s+)?(answer|response|solution|result)",
    ),
}
# The user's own program, config, logs or system prompt handles reasoning tags ("strip the <think> tags in my
# app with a regex", "write a system prompt for my app that tells the model to think in <scratchpad> tags"):
# the `tags` family alone does not count then (the concept detector still judges the sentence).
TAGS_OWN_ARTEFACT = (
    r"\b(my|our) (own |local |company'?s |team'?s )?([\w.-]+ ){0,3}(app|application|code|codebase|program|script"
    r"|client|frontend|backend|ui|pipeline|server|integration|wrapper|parser|logs?|logger|config|project|service"
    r"|chatbot|bot|website|dashboard|database|repo|notebook|agent|deployment|product|tool|model|distill\w*"
    r"|fine-?tune|xml|html|templates?|prompts?|files?|instance)s?\b|\bself-?hosted\b"
    r"|\bmein\w* (eigen\w* )?(\w+ ){0,3}(modell|instanz|server|app)\w*",
    r"\b(strip|stripping|parse|parsing|regexp?|remove|removing|filter|filtering|render|rendering|sanitiz\w*"
    r"|escape|escaping|elementtree|beautifulsoup|lxml|xpath|hide|hiding|collapse|collapsing|fold|folding"
    r"|ausblend\w*|versteck\w*)\b|\bsystem prompt\b",
    r"\b(split|splits|splitting|separate|separates|separating)\b",
    # the user's own / local model, or hiding, in other languages
    r"(ローカルモデル|自分のモデル|自作のモデル|本地模型|我的模型|로컬 모델|내 모델|modelo local|mi modelo"
    r"|mon mod[eè]le|mod[eè]le local|lokales modell|mein modell|mi propio modelo|meu modelo|il mio modello"
    r"|modello locale|mijn (eigen )?model|m[óo]j model|kendi modelim|modelim|мо[яейю] модел|локальн\w* модел"
    r"|自己的模型|自前のモデル|model (saya|aku|kami|kita|sendiri)|di-?host|sembunyi|tidak menampilkan"
    r"|nascondere|esconder|verbergen|ukry[ćc]|скры|gizle"
    r"|表示しない|非表示|隠す|隠し|隐藏|不显示|숨기|ocultar|masquer|cacher)",
)
# A dataset of reasoning the user (or their team, annotators, experts) wrote: their own data, not the model's.
DATASET_OWN = (
    r"\b(rationales?|reasoning|explanations?|traces?|chains? of thought) (that |which )?(i|we|my team|our team"
    r"|our annotators|annotators|humans|experts) (wrote|write|have written|authored|annotated|labell?ed|collected)\b",
    r"\b(my|our) (own )?(\w+ )?(rationales|annotations|explanations|reasoning traces)\b",
    # people the user hired or works with write the data: "we hired annotators to write step-by-step solutions"
    r"\b(annotators?|labell?ers?|raters?|contractors?|tutors?|crowd ?workers?|human experts?|domain experts?"
    r"|subject[- ]matter experts?)\b.{0,40}\b(write|wrote|written|writing|author\w*|annotat\w*|label\w*|draft\w*)\b",
    # the teacher is the user's own, licensed for distillation or open-weights: "distilling our own 70B model", "a
    # teacher model under terms that allow distillation", "open-weights outputs released under Apache 2.0"
    r"\b(distill\w*|teacher|fine-?tun\w*|train\w*)\b.{0,30}\b(our|my) (own|in-house|internal)\b"
    r"|\b(both|all) (are|is) (ours|mine)\b|\b(our|my) own (\w+ ){0,2}(model|llm|teacher|checkpoint|weights)\b",
    r"\b(licen[cs]\w*|terms|agreement|contract|tos)\b.{0,40}\b(allow|allows|allowed|permit|permits|permitted"
    r"|explicitly allow\w*)\b.{0,20}\b(distill\w*|training|derivative|synthetic)",
    r"\bopen[- ]?(weights?|source|licen[cs]ed)\b.{0,60}\b(model|outputs?|teacher|checkpoint)\b"
    r"|\b(apache|mit|bsd|cc[- ]by|llama \d? ?community|permissive(ly)?)\b.{0,20}\b(licen[cs]\w*|\d)",
)
GRADER_PATTERNS = (
    r"\b(grade|score|rate|evaluate|assess|judge)\b.{0,40}\b(the following|this|these|each|every)\s+"
    r"(candidate\s+)?(responses?|answers?|completions?|outputs?)\b",
    r"\b(using|according to|based on) (the|this) (rubric|scoring guide|grading criteria)\b",
    r"\b(on a scale (of|from) (1|0) to (5|10|100)|out of (5|10|100) points)\b",
)

BUILTIN_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    *COT_FAMILIES.items(),
    ("grader", GRADER_PATTERNS),
    *cot_detector.GATE_GROUPS,  # gate of the concept detector, in the same pass
)
# The shared prompt pass, split in three (``matchers.PARTS``; one set over all of them cost ~30x more on prose,
# bench_rules.py --pattern-groups): the phrase families and the grader (many ``.{0,N}`` gaps, each behind rare
# words) through a literal prefilter; the detector's trace/hiddenness vocabulary; its encoding shapes.
PARTS.update(dict.fromkeys([*COT_FAMILIES, "grader"], "filter:families"))
PARTS.update(dict.fromkeys(("cot:trace", "cot:hidden", "cot:pretext"), "cot:words"))
PARTS.update({n: "cot:shapes" for n, _ in cot_detector.GATE_GROUPS if n not in PARTS})
_COT = PatternSet.build(BUILTIN_GROUPS)
_TAGS_OWN = PatternSet.build([("own", TAGS_OWN_ARTEFACT)])  # run only when the `tags` family hit (rare)
_DATASET_OWN = PatternSet.build([("own", DATASET_OWN)])  # run only when the `dataset` family hit (rare)

# Private entries of the feature dict (a NUL cannot start a feature name): not features, never audited.
SKELETON_KEY = "\x00skeleton"
LAST_USER_KEY = "\x00last_user"
_SKELETON_TABLE = bytes.maketrans(b"123456789\t\n\r\x0b\x0c", b"000000000     ")
_UPPER = bytes(range(65, 91))
_SKELETON_TABLE_ASCII = bytes.maketrans(_UPPER + b"123456789\t\n\r\x0b\x0c", _UPPER.lower() + b"000000000     ")
TEMPLATE_HEAD, TEMPLATE_TAIL = 256, 96
PREFIX_CHARS = 64

# Frequent function words per Latin-script language.
_STOPWORDS: tuple[tuple[str, frozenset[str]], ...] = tuple(
    (lang, frozenset(words.split()))
    for lang, words in (
        ("en", "the and is of to what how you your please with this it"),
        ("es", "el los las que por para una es cómo qué con del"),
        ("fr", "le les des est une pour vous avec dans comment je il"),
        ("de", "der die das und ist nicht ein eine mit wie ich sie zu"),
        ("pt", "os não uma para com você como é do da"),
    )
)
_SCRIPTS = PatternSet.build(
    [
        ("ja", (r"[\p{Hiragana}\p{Katakana}]",)),
        ("ko", (r"\p{Hangul}",)),
        ("zh", (r"\p{Han}",)),
        ("ru", (r"\p{Cyrillic}",)),
        ("ar", (r"\p{Arabic}",)),
        ("hi", (r"\p{Devanagari}",)),
        ("el", (r"\p{Greek}",)),
        ("he", (r"\p{Hebrew}",)),
        ("th", (r"\p{Thai}",)),
    ]
)
