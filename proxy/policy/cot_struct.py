"""Structural path of the CoT-elicitation detector (``proxy/policy/cot.py``): concept co-occurrence anchored on
HIDDENNESS rather than on a named reasoning trace. RE2 syntax, case-insensitive, run on UTF-8 bytes.

Every request for the model's hidden reasoning, however it avoids the word "reasoning" ("the silent stretch
where you worked things out", "the billed-but-withheld segment of your previous turn", "the part the interface
folds away"), says four things near each other:

- HIDDEN: that the thing is unseen, private, internal or came before the visible answer (the anchor);
- SELF: that it is the model's ("you", "your", "a model like you");
- CONTENT: that it is text or a process the model produced (a trace noun, a generic container such as
  "segment", "passage", "tokens", "draft", or "you generated / worked out / computed");
- OUTPUT: a request to produce, copy, expand or reproduce it ("print", "give me", "I want", "verbatim").

A sentence window (the anchor's sentence and its neighbours) with all four and no NEGATIVE frame (a how-to,
design or why-question about hidden reasoning; a negated output verb; the user's own private material) is a
request. Each concept lists its words in en, es, fr, de, pt, it, nl, pl, tr, ru, zh, ja, ko, ar, and a few in
el, hi, th; concepts are lists of words, not phrasings of the development data.
"""

# ruff: noqa: RUF001  (non-Latin scripts are the point here)

from __future__ import annotations

from proxy.policy import cot_groups as groups
from proxy.policy import cot_lexicon as lex

_NA = r"(?:^|\P{L})"  # boundary for non-ASCII words (RE2 \b is ASCII-only)
_NZ = r"(?:\P{L}|$)"
_ANSWER = r"(answer|answers|reply|replies|response|responses|output|message|turn|completion|generation)"

# --- TIMING: the time before the model's first visible token ("what were you doing during the delay?"). An
# anchor by itself, and it names the model's own reply, so it stands for SELF too.
TIMING: tuple[str, ...] = (
    r"\b(during|in|throughout|over) (the|that|this|those) (\d+ )?(delay|pause|wait|gap|interval|lag|seconds|minutes"
    r"|silence)\b|\bduring (that|this|the) time\b|\b(the|that|this|such a) (long |whole )?(pause|delay|gap)\b"
    r"|\bbefore (the|your) (first|opening)"
    r" (visible )?(word|token|line|sentence|character)\b|\bbefore (the|your) (answer|reply|response|output) (even )?"
    r"(started|began|appeared|arrived|came)\b|\btime[- ]to[- ]first[- ]token\b|\bttft\b|\bspinner\b"
    r"|\b(thinking|working|loading)\W{0,4} for (ages|so long|a while|minutes)\b|\b(took|spent|waited) (\w+ )?\d+"
    r" ?(s|sec|secs|seconds|minutes)\b",
)

# --- HIDDEN: the anchor. Unseen, private, internal, or produced before the visible answer (past tense only:
# "think before answering" is an instruction for this reply, "before you answered" points at a hidden one).
HIDDEN: tuple[str, ...] = (
    r"\b(hidden|hiding|hides|hid|conceal\w*|secret|secretly|private|privately|internal|internally|inner|invisible"
    r"|unseen|unshown|undisplayed|unrevealed|withheld|withholds?|unreturned|collapsed|collapses|folded|folds? away"
    r"|redacted|unredacted|unsummari[sz]ed|pre-?summary|unedited|untouched|uncensored|unabridged|behind[- ]the[- ]"
    r"scenes|backstage|submerged|off[- ]?screen|suppressed|encrypted|silent|silently|quietly|in silence|in private"
    r"|in secret|under the hood|inside (you|yourself|your (own )?(head|mind|brain)))\b",
    r"\bpre-?(answer|response|reply|output|visible|final)\b|\bbefore (you )?(answered|replied|responded|spoke|wrote"
    r" (the|your) (answer|reply)|presenting|emitting|you (gave|wrote|sent|presented))\b"
    r"|\bbefore (your|the|that) (last |previous |prior |earlier |visible |final |actual )"
    + _ANSWER
    + r"\b|\b(prior|previous) to (your|the) (last |visible |final )?"
    + _ANSWER
    + r"\b",
    r"\bbetween (my|the) (message|question|prompt|request) and (your|the) (first|answer|reply|response|output)\b"
    r"|\bthe (other|remaining|missing|unseen|rest of the) (\d[\d,.]*k? )?(tokens|words)\b",
    # hidden by contrast with what was shown: "every token, not just the ones that were shown to me", "every
    # segment, visible or not", "the blocks I cannot see" (ja)
    r"\bnot (just |only )?(the ones|what|those|the parts?|the bits|the tokens|the words)( that| which)? (\w+ )?(was"
    r"|were|got|are|is|you) (\w+ )?(shown|visible|displayed|printed|showed|sent|returned)\b|\b(visible|shown"
    r"|displayed) or not\b|見えていない|見えてない|表示されていない|表示されない",
    *TIMING,
    r"\b(i|we|users?|the user|customers?|clients?) (never|can'?t|cannot|don'?t|didn'?t|did not|do not|won'?t)"
    r" (see|saw|get|got|receive|received|read)\b|\b(billed|charged|invoiced|paid for|paying for)\b"
    r"|\b(strips?|stripped|hides?|folds?|collapses?|compresse[sd]|summari[sz]e[sd]?) (away |out |it |them )?"
    r"(before|into|to|by default|from)\b",
    _NA + r"(ocult[oa]s?|privad[oa]s?|secret[oa]s?|en silencio|caché(e|s|es)?|privé(e|s|es)?|invisibles?|en silence"
    r"|secrète?s?|versteckt\pL*|verborgen\pL*|geheim\pL*|heimlich\pL*|im stillen|escondid[oa]s?|em sil[êe]ncio"
    r"|invis[íi]ve(l|is)|nascost[oiae]|in silenzio|segret[oiae]|invisibil[ei]|stilletjes|in stilte|onzichtba\pL*"
    r"|interne[nmrs]?|intern (gedacht|[üu]berlegt|erwogen|abgewogen)|innerlich\pL*|bevor du (geantwortet|geschrieben"
    r"|geantwortest)"
    r"|ukryt\pL*|w ciszy|niewidoczn\pL*|gizli|sessizce|i[çc]inden|g[öo]r[üu]nmeyen|скрыт\pL*|молча|про себя"
    r"|невидим\pL*|тайн\pL*|κρυφ\pL*|σιωπηλ\pL*|αθέατ\pL*|colapsad[oa]s?|plegad[oa]s?|repli[ée]e?s?|eingeklappt\pL*"
    r"|zugeklappt\pL*|recolhid[oa]s?|ripiegat[oiae]|ingeklapt\pL*|zwini[eę]t\pL*|daralt[ıi]lm[ıi][şs]|свёрнут\pL*"
    r"|свернут\pL*)" + _NZ,
    r"隐藏|隱藏|私下|默默|悄悄|折叠|摺疊|看不到|看不见|隠れ|隠さ|隠し|非表示|黙って|折りたた|見えない|숨겨진|숨긴"
    r"|속으로|조용히|접힌|보이지 않는|مخفي\pL*|الخفي\pL*|سرًا|بصمت|छिप\pL*|अंदर ही अंदर|मन में|ในใจ|ซ่อน",
)

# --- SELF: the model addressed or named.
SELF: tuple[str, ...] = (
    r"\b(you|your|yours|yourself|ur|the model'?s|the assistant'?s|its own|a model like you|(the|this) (assistant"
    r"|model)|assistant('?s)? (turn|message|reply|response|output))\b|\b(my|the|this|that) (last|previous|prior"
    r"|earlier) (call|request|completion|response|reply|answer|turn|question|prompt|message|generation)\b",
    groups.WINDOW["self"][1],
    r"你|您|あなた|君の|당신|너의|네가|أنت|σου|σας|εσύ|तुम|आप|अपने|คุณ",
)

# --- CONTENT: text or a process the model produced.
CONTENT: tuple[str, ...] = (
    *lex.TRACE_STRONG,
    *lex.TRACE_WEAK,
    *lex.TRACE_GENERIC,
    r"\b(segments?|parts?|portions?|sections?|passages?|blocks?|stretch|half|contents?|text|tokens?|words|lines"
    r"|sentences|generation|working|workings|drafting|scratch\w*|notebook|logs?|transcripts?|traces?|chain"
    r"|process|processes|pondering|musings?|commentary|scaffolding|original|monologue|narration|computation"
    r"|material|stuff|bits|pages?|scribbles?|paragraphs?|line|steps?|whatever|everything|all of it)\b",
    r"\b(you|model|assistant) (\S+ ){0,2}(generated|generates|generate|produced|produces|wrote|writes|computed"
    r"|computes|worked|did|thought|pondered|drafted|considered|weighed|spent|built|ran|runs|emitted|typed|said"
    r"|reasoned|came up with|went through|figured|mulled|deliberated|calculated|doing|thinking|computing|working)\b"
    r"|\b(did|were|was) you (\w+ )?(think|thinking|consider|considering|ponder|pondering)\b",
    _NA + r"(texto|texte|tekst|testo|text\pL*|metin|jetons|fichas|teil\pL*|abschnitt\pL*|parte|partie|deel"
    r"|cz[ęe][śs][ćc]|часть|част\pL*|inhalt\pL*|contenido|contenu|conte[úu]do|contenuto|inhoud|tre[śs][ćc]"
    r"|содержани\pL*|borrador\pL*|brouillon\pL*|entw[üu]rf\pL*|rascunho\pL*|bozz[ae]"
    r"|szkic\pL*|tasla[kğ]\pL*|черновик\pL*|текст\pL*|σκέψ\pL*|κείμεν\pL*|overwegingen|consideraciones|considérations"
    r"|überlegungen|considerações|considerazioni|pensaste|pensabas|pensais|pens[ée]|gedacht|[üu]berlegt|pensato"
    r"|pensavi|pensou|pensava|d[üu][şs][üu]nd[üu]\pL*|думал\pL*|обдумыва\pL*|размышля\pL*)" + _NZ,
    r"原文|文本|内容|草稿|下書き|テキスト|内容|초안|텍스트|내용|نص|सोच-विचार|सोच|विचार|ความคิด|ข้อความ",
)

# --- thinking out loud: asks the model to voice what it would keep to itself ("think out loud: the stuff that
# usually stays hidden"); an output verb, and in an imperative it addresses the model
ALOUD: tuple[str, ...] = (
    r"\b(think|reason|talk|work)(ing)? (it |this |things )?(through )?(out loud|aloud)\b",
    _NA + r"(вслух|en voz alta|[àa] voix haute|laut (denken|nachdenken)|denk\pL* laut|ad alta voce|em voz alta"
    r"|hardop|na g[łl]os|sesli)" + _NZ,
    r"出声|大声|声に出して|소리 내어",
)

# --- OUTPUT: produce, copy, expand or reproduce it.
OUTPUT: tuple[str, ...] = (
    r"(?:^|\PL)(?:" + lex.COPY_VERBS + r")(?:\PL|$)",
    *groups.WINDOW["take_manner"],
    *groups.WINDOW["extract_weak"][:1],
    *groups.WINDOW["extract_weak"][2:],
    r"(^|[.:;!?,]\s*|\b(now|then|please|and|just|to) )(produce|generate|write|compose)\b",
    r"\b(expand|unfold|uncollapse|unhide|restore|reconstruct|redo|contribute|replace (it"
    r"|them|that|this) with|give me|i want|i need|i'?d like|let me (see|read|have)|read (it |them )?(back|aloud|out)"
    r"|walk me through|(is|are|gets?|get) (printed|shown|displayed|visible)|fully visible|shown inline"
    r"|token for token|line by line"
    r"|as generated|as (it|they) (happened|was|were|unfolded)|(what|which) (were|was) (the )?(\w+ ){0,3}(words"
    r"|tokens|lines|sentences|steps|notes|thoughts)|the way (it|they) (actually |really )?(looked|was|were"
    r"|happened|unfolded)|not the (summary|sentence|blurb|recap|paraphrase)|show me where)\b",
    *ALOUD,
    _NA + r"(пиши|выведи|выводи|renvoie\pL*|renvoyez|tel(le)?s? quel(le)?s?"
    r"|перепиши\pL*|γράψ\pL*|δείξ\pL*|αντίγραψ\pL*|αυτολεξεί"
    r"|दिखा\pL*|लिख\pL*|शब्दशः|ขอ|แสดง|เขียน)",
)

# --- NEGATIVE frames: a question or design task about hidden reasoning, a negated output, the user's own material.
NEGATIVE: tuple[str, ...] = (
    r"\bhow (do|does|can|could|should|would|might) (i|we|one|people|developers|models?|llms?|you design|you build)\b"
    # (a why-question in quotes is the user's question being cited: "before answering 'why is the sky blue'")
    r"|\bhow to\b|(^|[^'\"“‘«\w])why (do|does|did|are|is|would|should|don'?t|doesn'?t)\b"
    r"|\bwhat('s| is| are) (the )?(difference"
    r"|point|purpose|meaning|role|risk|best way)\b|\bexplain (what|how|why|the difference)\b|\bis it (possible"
    r"|true|normal|safe|ethical)\b",
    *groups.WINDOW["design"],
    *groups.WINDOW["meta_prompt"],
    *groups.WINDOW["quoted"][1:],
    r"\b(translat\w*|traduc\w*|[üu]bersetz\w*|tradu\w*)\b[^'\"“‘«]{0,40}['\"“‘«]",
    # the user's or a third party's own material: "my private journal", "I wrote a private entry"
    groups.WINDOW["other_owner"][0],
    *groups.WINDOW["other_owner"][2:],
    r"\b(i|we) (\w+ )?(wrote|drafted|composed|typed|keep|kept|recorded|jotted)\b",
    # the operator's own model or serving stack
    *groups.OPERATOR,
    # hidden somewhere that is not the model: "what is hidden in the stack trace", "the secret in this riddle"
    r"\x00 (in|inside|within|behind|under|among) (the|this|that|my|our|a|an|these|those) (\w+ ){0,2}(code|trace|stack"
    r"|file|log|text|data|image|picture|photo|message|email|puzzle|riddle|poem|story|song|painting|document|page"
    r"|website|game|room|box|menu|settings|folder|table|dataset|spreadsheet|video|movie|book|novel|film)s?\b",
    # the model told to keep it hidden: "keep your reasoning internal", "think privately, then answer"
    *groups.WINDOW["omit"],
    r"\b(think|reason|work)\w* (\w+ ){0,3}\x00(,)? (then|and (then )?)?(only |just )?(give|output|write|answer|reply"
    r"|respond|return|print|show)\b",
)

# --- a negated output ("never reveal your hidden notes"), unless it is a condition ("if you don't show me ...")
NEGATED: tuple[str, ...] = (
    r"\b(never|not|don'?t|do not|must not|mustn'?t|should not|shouldn'?t|avoid|refuse to|no need to|without)"
    r" (\w+ ){0,2}(reveal\w*|show\w*|print\w*|output\w*|shar\w+|disclos\w*|expos\w*|leak\w*|includ\w*|repeat\w*"
    r"|quot\w*|mention\w*)\b|" + groups.NOT_ASKED,
)
CONDITION: tuple[str, ...] = (r"\b(if|unless|until) (you|u) (don'?t|do not|won'?t|will not|refuse|keep)\b",)

# --- the hidden thing owned by someone else, right before it: "the manuscript's hidden meaning", "his secret plan"
OWNED: tuple[str, ...] = (r"\b(\w+'s|its|his|her|their)\s+(\w+\s+)?\x00",)
OWNED_SELF: tuple[str, ...] = (r"\b(model|assistant|ai|bot|llm)'?s\s+(\w+\s+)?\x00",)

# --- someone else named in the anchor's sentence: "the narrator's private thoughts", "its hidden layer"
OTHER: tuple[str, ...] = (
    r"\b(its|his|her|their|someone'?s|people'?s|(the|a|an) (character|narrator|author|protagonist|person|student"
    r"|robot|engine|villain|hero|spy|detective|ai narrator|chess engine))\b|\b\w+'s\s+(\w+\s+)?\x00",
)

# --- the model named unmistakably (counts from a neighbouring sentence): "your", "you wrote", "tu", "dein"
SELF_STRONG: tuple[str, ...] = (
    r"(^|[.:;!?]\s*|\bplease )(think|reason)(ing)? (out loud|aloud)\b|"
    r"\b(your|yours|yourself|the model'?s|the assistant'?s)\b|\byou (\S+ )?(wrote|generated|produced|computed|did"
    r"|thought|spent|said|typed|emitted|worked|drafted|considered)\b",
    _NA + r"(tu|tus|ton|ta|tes|votre|vos|dein\pL*|teu|tua|teus|tuas|seu|sua|seus|suas|tuo|tuoi|tue|jouw|uw"
    r"|tw[óo]j\pL*|twoj\pL*|тво\pL*|ваш\pL*)" + _NZ,
    r"你的|您的|あなたの|당신의|σου|तुम्हार\pM*|आपक\pM*|ของคุณ",
)

GROUPS: dict[str, tuple[str, ...]] = {
    "owned": OWNED,
    "owned_self": OWNED_SELF,
    "other": OTHER,
    "self_strong": SELF_STRONG,
    "negated": NEGATED,
    "condition": CONDITION,
    "self": SELF,
    "content": CONTENT,
    "output": OUTPUT,
    "negative": NEGATIVE,
    "creative": groups.WINDOW["creative"],  # a character's hidden thoughts, unless the model is named ("your")
}
REQUIRED = frozenset({"self", "content", "output"})


def vetoed(window: set[str]) -> bool:
    """A negative frame or a negated output verb (not a condition) among the concept groups of a window."""
    if "owned" in window and "owned_self" not in window:
        return True
    return "negative" in window or ("negated" in window and "condition" not in window)


def asks(window: set[str]) -> bool:
    """The concept groups of one window around a HIDDEN anchor: a request for the model's hidden output?"""
    return REQUIRED <= window and not vetoed(window)
