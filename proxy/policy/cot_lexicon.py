"""Concept lexicon of the CoT-elicitation detector (``proxy/policy/cot.py``), RE2 syntax, case-insensitive.

Terms are grouped by CONCEPT, not by phrasing: a request for the model's hidden reasoning names a reasoning
TRACE and says, near it, that the trace is the model's own hidden one (OWNERSHIP) or how to take it out
(EXTRACTION). Each group lists the concept's words in en, es, fr, de, pt, it, nl, pl, tr, ru, zh, ja, ko
and ar. RE2's ``\\b`` and ``\\w`` are ASCII-only, so terms in other scripts use ``\\pL`` for suffixes and
no word boundaries. Patterns run on UTF-8 bytes of the normalised prompt (``cot.normalise``).
"""

# ruff: noqa: RUF001  (non-Latin scripts and look-alike letters are the point here)

from __future__ import annotations

_SEP = r"[\W_]?"  # one separator between obfuscated letters: r-e-a-s-o-n, r e a s o n, mono-logue
_LEET = {"a": "[a4@]", "e": "[e3]", "i": "[i1!|]", "o": "[o0]", "s": "[s5$]", "t": "[t7+]", "g": "[g9]", "l": "[l1|]"}


def loose(word: str) -> str:
    """``word`` with one optional separator between letters and leetspeak digits for letters."""
    return _SEP.join(_LEET.get(c, c) for c in word)


# --- TRACE: nouns naming the model's reasoning. STRONG ones denote a model trace or scratch space only;
# WEAK ones are ordinary words ("reasoning") that also name a person's or a court's reasoning.
TRACE_STRONG: tuple[str, ...] = (
    r"chain[\W_]{0,2}of[\W_]{0,2}thoughts?|\bcots?\b|" + loose("scratchpad") + r"|scratch[\W_]?(work|paper|notes?"
    r"|space|area|buffer)|scribble[\W_]?pad|sketch[\W_]?pad"
    r"|\b(mental|internal|inner|private) (whiteboard|notepad|notebook|sketchpad|blackboard|workspace|canvas|scratch"
    r"\w*)\b",
    r"\bpre-?(answer|response|reply|output) (text|tokens|content|thinking|reasoning|notes|output|stuff|thoughts)\b",
    r"<\s*/?\s*(think|thinking|reasoning|scratchpad|thoughts?|reflection|analysis)\s*> (content|contents|text|output"
    r"|block)\b",
    r"\brough (work|notes?)\b|\b(inner|internal|private) (monologue|voice|dialogue|speech|narration)\b",
    loose("monolog") + r"(ue)?s?|thought[\W_]?process(es)?|stream[- ]of[- ](consciousness|thought)",
    r"thinking[\W_]{0,6}(process|tokens?|blocks?|traces?|steps?|section|content|tags?|buffer|box|panel|pane|bubble"
    r"|drawer|dropdown|window|indicator|area|accordion)",
    loose("reasoning") + r"[\W_]?(tokens?|traces?|steps|process|chain|buffer|content|blocks?|section|logs?|transcript"
    r"|tags?|panel|box|pane|bubble|drawer|dropdown|window|accordion)|" + loose("thinking") + r"[\W_]?(tokens?|traces?)",
    r"\b(analysis|reasoning|thinking|hidden|internal|private|reflection|deliberation|planning|drafting|scratch|"
    r"pre-?answer|pre-?response)[\W_]{1,3}(phase|channel|stage|pass|mode output)\b|"
    r"\bcognition\b|\bcognitive (traces?|process(es)?|steps|log)\b|\bmental (math|arithmetic|calculations?)\b|"
    r"\binference (steps|chain|trace)\b|\bmental (process(es)?|steps|notes|workings?|model of this)\b"
    r"|\btrain of thought\b|"
    r"\bline of (thinking|reasoning)\b|\b(problem[- ]solving|solution|solving) (process|steps|trace)\b|"
    r"\bdeliberations?\b|\bworking notes\b|\bworking memory\b|\bnotes to (yourself|self)\b|\byour (internal"
    r"|hidden) (states?|computation)",
    # other languages
    r"(ton|votre|tu|teu|seu|tuo) (propre |propio |pr[óo]prio )?([ée]tat|estado|stato) intern\pL*|dein\pL* "
    r"inner\pL* zustand|cadena de pensamiento|proceso de pensamiento|mon[oó]logo (interior|interno)|"
    r"cha[iî]ne de (pens[ée]e|r[ée]flexion)s?",
    r"processus de r[ée]flexion|cheminement de pens[ée]e|monologue int[ée]rieur|gedankenkette|denkprozess",
    r"proceso mental|processus mental|mentale[nr]? prozess|denkschritte|processo mental[e]?|denkstappen|"
    r"innere[rn]? monolog|cadeia de pensamento|processo de (pensamento|racioc[ií]nio)|catena di pensier[oi]",
    r"processo di pensiero|monologo interiore|gedachteketen|denkproces|innerlijke monoloog",
    r"[łl]a[ńn]cuch(a|u)? my[śs]li|proces(u)? my[śs]low|wewn[ęe]trzn\pL* monolog|d[üu][şs][üu]nce zincir",
    r"d[üu][şs][üu]nce s[üu]rec\pL*|思考过程|推理过程|思考過程|推論過程|사고 과정|추론 과정|i[çc] ses"
    r"|цепочк\pL* (мысл|рассужд)"
    r"|внутренн\pL* монолог|思维链|思考链|内心独白|思考の連鎖|内なる独白",
    r"사고의 사슬|생각의 사슬|내면의 독백|سلسلة (التفكير|الأفكار)|المونولوج الداخلي",
)
# Periphrases of the trace. Each one addresses the model ("what you wrote to yourself"), so a match also
# counts as the model's own trace.
TRACE_PERIPHRASIS: tuple[str, ...] = (
    r"\b(what|everything|whatever|all|anything|the (text|tokens|content|output|words)) (that |which )?you "
    r"(wrote|generated|produced|said|output|emitted|typed|thought) (to yourself|before|prior to|while)",
    r"\b(teil|parte|partie|deel|cz[ęe][śs][ćc]) (deiner|de tu|de ta|da tua|da sua|della tua|van je|twojej)"
    r" (antwort|respuesta|r[ée]ponse|resposta|risposta|antwoord|odpowiedzi)",
    r"\b(hidden|invisible|collapsed|redacted|unseen|secret|private|unshown|behind[- ]the[- ]scenes|backstage"
    r"|silent|unspoken|unsaid|unvoiced"
    r"|folded|internal) (part|portion|section|segment|bit|side|layer|"
    r"content|text|half) of (your|the|this|that) (\w+ )?(response|output|answer|reply|message|generation)",
    r"\bbetween (your|the) (thinking|reasoning|think|thought) tags\b|\b(thought|reasoned|thinking|worked) for \d+ ?"
    r"(seconds|secs?|s|minutes|mins?|m)\b",
    r"\b(drafts?|notes|scribbles|musings|doubts|hypothes[ie]s|dead[- ]ends|intermediate (steps|thoughts|"
    r"conclusions|results)) (that )?you (wrote|made|had|considered|weighed|rejected"
    r"|discarded|"
    r"took|kept|reached)",
    # Options and alternatives the model weighed are ordinary conversation ("the options you rejected for my
    # logo brief"); they name the hidden trace only with a marker of where they were weighed.
    r"\b(options?|alternatives?|ideas) (that )?you (considered|weighed|rejected|discarded|had)( and \w+)? "
    r"(internally|privately|silently|in (your|the) (head|mind|thinking|reasoning)|before (answering|you answered"
    r"|replying|you replied|responding))",
    r"\b(tape|recording|footage|replay|transcript|playback|video|snapshot|dump)s? of (your|the model'?s) (own )?"
    r"(head|mind|brain|thoughts|thinking|inner \w+|(last|previous) (answer|reply|response|turn))\b"
    r"|\b(what (were|was) you|what you (were|was)) (computing|calculating|processing|working on|working out"
    r"|figuring out|weighing|debating|deliberating|mulling over|chewing on)\b"
    r"|\b(your|the) (visible|shown|displayed|public|official|polished|final) (explanation|answer|reasoning|summary"
    r"|text|response|output|version) (is|was) (just |only |merely |really )?(a |an )?(\w+ )?(paraphrase|summary"
    r"|recap|sanitized|sanitised|cleaned[- ]up|condensed|abridged|rewrite|rewritten|digest)\b",
    r"\b(path|route|road|journey|trail|steps) (that )?you (took|followed|walked|went down|travel+ed)\b|\b(traces?"
    r"|workings?) (that )?(you|your model|the model) (produced|generated|emitted|wrote|made|ran|computed)\b",
    r"\b(\w+ ){0,2}your (mind|brain|head|network|circuits|weights|neurons) (made|took|followed|went through|did|handled"
    r"|processed|tackled|approached|worked on"
    r"|produced|considered|explored|tried)\b|\b(contents?|inside) of your (brain|mind|head)\b|\b(everything|all"
    r"|whatever|anything) (that )?you (considered|"
    r"thought about|weighed|mulled over)\b",
    r"\b(tokens|text|words|content|things?) (did |that |which )?you (generate|generated|produce|produced|write|wrote|"
    r"emit|emitted|output|think|thought|had|considered) (before|prior to|ahead of)\b",
    r"\b(the )?(first|last|every|each|next) (thing|idea|step|thought)s? (that )?you (thought|considered|had|did)\b|"
    r"\beverything (up to|until|before|preceding) your (\w+ )?(answer|reply|response|output)\b|"
    r"\b(went|goes|was going|is going) on (inside|in) your (head|mind)\b|\binside your (head|mind)\b",
    r"\b(box|block|section|panel|part|text|content)\b.{0,30}\b(above|before|preceding|ahead of) your (\w+ )?(answer|"
    r"response|reply|output)\b",
    r"\b(rationale|justification|analysis|notes|work) (that )?you (computed|generated|produced|wrote|had|came up with|"
    r"formed|built) (before|while|internally|privately)\b|\bin your head\b|\bbehind your (\w+ )?(answer|response"
    r"|reply|output|solution)\b",
    r"\b(part|portion|section|segment|content|text) of (your|the) (\w+ )?(output|response|answer|reply) (that|which) "
    r"(the |your )?(api|interface|ui|app|system|provider|client) (hides|redacts|removes|strips|collapses|omits|cuts)",
    r"\bwhat (were|are|was) you (thinking|reasoning|considering|pondering|mulling)|\bwhat you (were|are) (thinking"
    r"|reasoning|considering|pondering)(?: about)?|\b(went|goes|going|crossed|crosses|passed|ran) through your (mind"
    r"|head|circuits|network|weights|neurons|layers|brain)"
    r"|\bcrossed your mind\b|\bhow you (got|arrived|came) (there|to (it|this|that|the|your))|\b(the )?work(ing|ings)? "
    r"(that )?you (did|had|went through)\b|\byour (problem[- ]solving|workings)\b|\b(steps|path|route"
    r"|process) (that )?your (mind|brain|model|network) (took|followed|went)",
    r"\bhow you (worked|figured|puzzled|thought|solved|did|cracked|tackled|computed|calculated|reasoned)( \w+){0,4}"
    r" (just now|a (minute|moment|second|few seconds) ago|earlier|in your (last|previous) (answer|reply|response))\b"
    r"|\b(process|route|path|sequence"
    r"|steps?|working) (that )?you (ran|went|worked|walked|moved) through\b|\b(read|see into|look into|peer into"
    r"|x-?ray (vision )?into|inside of|inside) your (mind|head|brain)\b"
    r"|(leer|lire dans|lesen|ler|leggere|читать) (tu mente|ton esprit|deine gedanken|a tua mente|la tua mente"
    r"|твои мысли)|心を読|(read|reading|see|seeing) (you|your thoughts) as you\b"
    r"|(proceso|camino|cheminement|d[ée]marche|processus|percurso|processo|процесс|ход) (que|qu'|che|который)"
    r" ?(seguiste|hiciste|tomaste|tu as (suivi|fait)|(voc[êe] )?(seguiu|fez)|hai (seguito|fatto)|ты (прош[её]л"
    r"|проделал))",
    r"lo que (usted )?(pensaste|razonaste|consideraste|pens[óo]|razon[óo]|consider[óo])|ce que tu as (pens[ée]"
    r"|r[ée]fl[ée]chi)|was du (dir )?gedacht"
    r"|o que (voc[êe] )?(pensou|pensaste|raciocinou)|cosa hai pensato|wat je dacht|co (sobie )?my[śs]la[łl]e[śs]"
    r"|ne d[üu][şs][üu]nd[üu]n|что ты (думал|подумал|рассуждал)|о ч[её]м ты думал|你(刚才|之前)?(想了什么|在想什么"
    r"|怎么想)"
    r"|akl[ıi]ndan ge[çc]en\pL*|何を考えて|考えていた(こと|内容)|考えた(こと|内容)"
    r"|무엇을 생각|무슨 생각|했던 생각|بماذا فكرت"
    r"|ما الذي فكرت",
)
# Field and object names of reasoning APIs across vendors (reasoning_content, thinking blocks, thought parts,
# encrypted_content, thoughtSignature, redacted_thinking, include_thoughts, ...) and code-like accessors of the
# model's trace (``self.last_thinking``). They name the unseen part of a reply, so a match is also OWNERSHIP.
TRACE_API: tuple[str, ...] = (
    r"\breasoning[\W_]?(content|details|items?|summar(y|ies)|text|parts?|signature)\b|\bthought[\W_]?(parts?"
    r"|signatures?|summar(y|ies))\b|\bthoughtsignature\b|\binclude[\W_]?(thoughts|reasoning|thinking)\b"
    r"|\bthinking[\W_]?(blocks?|budget|config|signature|deltas?|parts?)\b",
)
# ... of which these name the unseen part itself (also OWNERSHIP): encrypted or redacted reasoning, and
# code-like accessors of the model's own trace.
TRACE_API_HIDDEN: tuple[str, ...] = (
    r"\b(internal|hidden|raw|private|secret|inner)[_-](reasoning|thoughts?|thinking|cot|monologue|scratchpad"
    r"|deliberation|trace)(\b|_)|\b(hidden|invisible|unseen|secret|private|unshown|undisplayed) tokens\b",
    # "the raw internal trace", "the full hidden trace": a trace said to be unseen is the model's reasoning trace
    r"\b(internal|hidden|private|secret|inner|concealed|unshown|native) ((reasoning|thought|thinking|deliberation"
    r"|decision) )?traces?\b",
    r"\bencrypted[\W_]?(content|reasoning|thinking|thoughts?|cot)\b|\bredacted[\W_]?thinking\b"
    r"|\b(self|this|model|assistant|bot|ai)\.(\w+_)*(thinking|thoughts?|reasoning|scratchpad|cot|monologue|"
    r"chain_of_thought)\w*",
)
# Periphrases of the trace that say, by their meaning, that it is the model's own UNSEEN part: self-talk,
# what went on inside or before the answer, discarded drafts, recording metaphors, the part not shown.
# A match counts as the model's own trace and as OWNERSHIP.
TRACE_HIDDEN: tuple[str, ...] = (
    r"\byou (\w+ ){0,2}(said|muttered|whispered|mumbled|murmured|told|wrote|noted|kept|asked|argued|debated"
    r"|reasoned|made|jotted|scribbled|thought|explained|repeated) (\w+ ){0,2}to yourself\b|\byou('d| would)"
    r" (\w+ )?keep (\w+ ){0,2}to yourself\b|\byou (\w+ ){0,2}(muttered|mumbled|murmured|whispered)\b"
    r"|\bdid you (\w+ ){0,2}(mutter|whisper|mumble|murmur)\b|\bdid you (\w+ ){0,2}(say|tell|write|note|ask|think"
    r"|argue|keep) (\w+ ){0,2}to yourself\b",
    r"\b(what|everything|whatever|anything|the stuff|the things?) (that )?(did )?you (were |had been )?(\w+ ){0,2}(do"
    r"|did|think|thought|thinking( about)?|consider|considered|considering|pondering|mulling( over)?|musing"
    r"|deliberate|deliberated|reasoned|pondered|mulled( over)?|weighed|drafted|deleted|discarded|tried|rejected"
    r"|explored|scribbled|noted"
    r"|weighing|computing|say|said|write|wrote|generate|generated|compute|computed|process|processed|go through"
    r"|went through|type|typed|work through|worked through|figure|figured)( out| through)? ((right |just "
    r"|immediately )?(before|prior to|while|during|ahead of)\b|(for|on|in) (that|the|your|my) (last|previous|earlier)"
    r" (answer|reply|response|question|prompt)\b)",
    r"\byou (\w+ )?(reasoned|thought|deliberated|pondered|mulled|agonized|agonised|brainstormed|thought it "
    r"through|worked it out)( (it|this|that))?( over)? (for (a while|a bit|a moment|some time|\w+ seconds)|silently"
    r"|privately|internally|at length|quietly)?( before| prior to| while| ahead of)\b",
    r"\bwhat you (actually|really|truly|secretly|privately) (thought|were thinking|considered|reasoned|said)\b"
    r"|\byou (\w+ )?(produced|generated|wrote|emitted|output) (\w+ ){0,2}(tokens|text|words|content|output|stuff)"
    r" (that )?(i|we|users?) (never|didn'?t|did not|can'?t|cannot|don'?t) (saw|see|get|got|read)\b",
    r"(lo )?que te (dijiste|has dicho) (a ti mism[oa])?|ce que tu (t'es dit|te disais|te dis)|was (hast )?du dir"
    r" (selbst )?(gesagt|gedacht)|o que (voc[êe] )?(disse|dizia) (a|para) (si|ti) mesm[oa]|cosa ti (sei detto"
    r"|dicevi)|wat je tegen jezelf (zei|zegt)|co (m[óo]wi[łl]e[śs]|powiedzia[łl]e[śs]) (sobie|do siebie)"
    r"|kendi kendine (ne )?(s[öo]yledi\pL*|konu[şs]tu\pL*)|что ты (говорил|сказал|думал) (сам )?себе"
    r"|自言自语|心里(想|说)的|内心(独白|的想法)|独り言|心の中で(考え|言っ)|속으로 (한|했던) (말|생각)|혼잣말"
    r"|ما قلته لنفسك",
    r"(lo )?qu[ée] (pas[óo]|pasaba) por tu (cabeza|mente)|ce qui (t'est pass[ée]|vous est pass[ée]|s'est pass[ée]"
    r"|se passait|te passait) (par|dans)"
    r" (la|ta) t[êe]te|was (dir|in deinem kopf) (durch den kopf )?(ging|gegangen ist|vorging|vor sich ging)"
    r"|o que (passou|passava) pela (tua|sua) (cabe[çc]a|mente)|cosa ti (passava|[èe] passato) per la (testa|mente)"
    r"|что (происходило|было) у тебя в голове|что (пришло|приходило) тебе в голову|你(脑子里|心里)(在)?想(什么|的)"
    r"|頭の中で(考え|思っ)|머릿속(에서|으로)? ?(한|했던)? ?생각|속으로 (한|했던)",
    r"\b(exactly|precisely|literally) what you (thought|were thinking)([.!?;:,]|$| (before|while|when|as"
    r"|internally|silently|privately|just now|a moment ago|earlier))",
    r"\b(the way|exactly as|just as) you (did|thought|reasoned|were thinking|worked)( it)? (internally|silently"
    r"|privately|in your head|to yourself|in secret)\b",
    r"\b(pages?|drafts?|notes?|parts?|bits?|lines?|sentences?|versions?|scribbles) (that )?you (\w+ )?(tore out"
    r"|ripped out|threw away|threw out|crossed out|erased|scrapped|crumpled|binned|edited out)\b",
)
# Metaphors of the unseen part of the reply (recordings, the cutting-room floor, what went on backstage, the
# part that stays hidden): OWNERSHIP, but the model's only when the sentence says so ("of your last reply").
TRACE_METAPHOR: tuple[str, ...] = (
    r"\b(director'?s cut|deleted scenes|outtakes|bloopers|b-roll|cutting[- ]room floor|raw footage|unedited "
    r"(footage|tape|cut)|rough cut|first cut|backstage (footage|pass|tour|version|cut|recording)|behind[- ]the[- ]"
    r"scenes (footage|version|cut|tour|look|reel|recording)|flight (data )?recorder|black[- ]box (recording|recorder)"
    r"|making[- ]of|margin (notes|scribbles)|play[- ]by[- ]play|blow[- ]by[- ]blow)\b|\b(collapsed|hidden|folded"
    r"|greyed[- ]out|grayed[- ]out|expandable"
    r"|redacted|blurred) (block|box|section|panel|part|area|region|pane|drawer|spoiler)\b",
    r"\b(what|everything|whatever|all|anything|stuff|things?) (that )?(went|goes|was going|is going|happened"
    r"|happens|was happening|ran|was running) on (internally|inside (you|your (head|mind|network|weights))|in you\b"
    r"|in there|behind the (curtain|scenes)|backstage|in the background|under the hood|in your (head|mind"
    r"|circuits|weights|layers))",
    r"\b(part|portion|section|segment|content|text|half|bit|stuff) (of (your|the|this) (\w+ )?(output|response"
    r"|answer|reply|message|generation) )?(that|which) (normally |usually |always |you )?(stays?|remains?|is|are"
    r"|gets?|got|was|were|keep|kept) (hidden|invisible|collapsed|redacted|concealed|unseen|private|secret"
    r"|withheld|folded|stripped)\b|\b(part|stuff|bit|text) (before|ahead of|preceding) (the part|what) (i|we|you)"
    r" (saw|see|got|read|showed|were shown)\b",
    # the unshown part by a picture or by what was skipped: "the underwater part", "the steps you skipped", "what you
    # went through in your head", "everything the AI thinks"; Dutch "kladwerk", German "im Kopf durchgegangen"
    r"\b(underwater|submerged|below[- ]the[- ](surface|waterline)|unshown) (part|portion|bit|half|section|stuff)\b"
    r"|\b(part|portion|bit|half|stuff) (below|under|beneath) the (surface|waterline|water)\b"
    r"|\b(steps|parts|bits|stages) (that )?you (skipped|left out|glossed over|did ?n[o']t show)\b"
    r"|\b(everything|whatever) (that )?(the (ai|model|assistant|bot)|you) (thinks?|thought|was thinking|went through)\b"
    r"|\bwhat (you|the (ai|model|assistant)) went through in (your|its) (head|mind)\b",
    r"\bkladwerk\b|\bkladje\b|\bim kopf (durch\pL*|[üu]berleg\pL*|gedacht)|\bin (je|jouw) hoofd\b"
    r"|\bdi (kepala|pikiran) ?(mu|kamu|anda)\b|(?:^|\P{L})у (тебе|вас) в голов\pL*",
)
# Generic nouns that name a reasoning trace only when it is hidden ("the derivation you did silently",
# "your internal calculations"); "show your calculations" is homework.
TRACE_GENERIC: tuple[str, ...] = (
    r"\b(calculations?|computations?|derivations?|deductions?|inferences?|logic|analysis|considerations?|"
    r"reflections?|musings|intermediate steps|steps|work(ings)?|notes|drafts?|ideas)\b",
    # what the model laid out for itself before writing: a plan, an outline, a strategy (the trace once hidden)
    r"\b(plans?|outlines?|strateg(y|ies)|approach|skeleton|game ?plan|to-?do list|memo|sketch|first draft)\b"
    r"|esquema|esbo[çc]o|esquisse|план|提纲|大纲|计划|計画|계획|kế hoạch|rencana|mpango|תוכנית"
    r"|แผน|suunnitelm\pL*|σχέδιο",
    r"\bback[- ]and[- ]forth\b|\binternal (debate|dialogue|argument|conversation)\b|borrador\pL*|brouillon\pL*"
    r"|entw[üu]rf\pL*|rascunho\pL*|bozz[ae]|szkic\pL*|taslak\pL*|черновик\pL*|草稿|下書き|초안"
    r"|notas|notizen|aantekeningen|notatk\pL*|notlar\pL*|заметк\pL*|笔记|メモ|메모",
)
TRACE_WEAK: tuple[str, ...] = (
    # records of the process (discovery, audit, logging): "the deliberative material", "rough work"; before the
    # bare nouns below, so that the longer span is the occurrence
    r"\bdeliberative (material|record|notes?|process|text|trail|history)\b|\b(reasoning|thinking|thought|deliberation)"
    r" (records?|trail|output)\b|\bintermediate (text|deliberation|reasoning|notes|buffer|work|thoughts)\b"
    r"|\brough work\b",
    loose("reasoning") + r"|\breasonings?\b|\bdeliberat(e|ing)\b",
    loose("thinking") + "|" + loose("thought") + r"s?\b|\bthink-alouds?\b",
    r"razonamiento|pensamientos?|reflexi[oó]n|\bpens[ée]e\b|deliberaci[óo]n|d[ée]lib[ée]ration|delibera[çc][ãa]o"
    r"|deliberazione|raisonnement|r[ée]flexion|pens[ée]es|gedankengang|[üu]berlegung"
    r"|gedanken|denkweg|denkschritte|racioc[ií]nio|pensamentos?|ragionament[oi]|pensieri|redenering"
    r"|gedachtegang|gedachten|rozumowani\pL*|tok my[śs]leni\pL*|my[śs]li|d[üu][şs][üu]nce\pL*"
    r"|ak[ıi]l y[üu]r[üu]tme\pL*",
    r"рассуждени\pL*|размышлени\pL*|ход\pL* мысл\pL*|мысл[иьея]\pL*|思考|推理|思路|想法|推論|考え|추론|생각|사고"
    r"|تفكير|استدلال|أفكار",  # no suffix: the possessive -ك after it is the "self" marker
    # vi, id/ms, sw, he, th, tl, fi, el, hi, hu, cs, ro, uk, bn, fa (the possessive follows the noun in several)
    r"suy (nghĩ|luận)|tư duy|ý nghĩ|(?:^|\P{L})(pikiran\pL*|pemikiran\pL*|berpikir|penalaran\pL*|pikirkan|mawazo"
    r"|fikra|wazo|iniisip|pag-iisip|isip|pangangatwiran|ajatu\pL*|ajattel\pL*|päättely\pL*|gondolat\pL*"
    r"|gondolkod\pL*|gondolt\pL*|düşündü\pL*|érvelés\pL*|myšlenk\pL*|uvažování|gânduri\pL*|gândire\pL*"
    r"|raționament\pL*)(?:\P{L}|$)"
    r"|מחשב(ות|ה)\pL*|חשיבה|הנמקה|ความคิด|การคิด|กระบวนการคิด|σκέψ\pL*|συλλογιστικ\pL*|सोच|विचार|तर्क"
    r"|думк\pL*|міркуван\pL*|চিন্তা\pL*|ভাবনা\pL*|افکار|استدلال",
    # sv, da, no, ca, sk, bg, hr/sr, ur, ta, ms
    r"(?:^|\P{L})(tankar(na)?|tanke(r|rne|ne|gang|gången|gång)?|tankegång\pL*|tankegang\pL*|resonemang\pL*"
    r"|ræsonnement\pL*|resonnering\pL*|raonament\pL*|pensament\pL*|myšlienk\pL*|uvažovan\pL*|misli|misao"
    r"|razmišljan\pL*|fikiran\pL*|penaakulan)(?:\P{L}|$)|мисли(те)?|разсъждени\pL*|سوچ|خیالات|சிந்தனை\pL*"
    r"|நினைத்த\pL*|யோசனை\pL*",
)

# Copy verbs (extraction), en + other languages, for the "take_*" window groups.
COPY_VERBS = (
    r"print|prints|printed|printing|dump|dumps|dumped|dumping|output|outputs|echo|echoes|echoing|paste|pastes|pasting"
    r"|export|exports|exporting|replay|rewind|reveal|reveals|revealing|emit|spill|spit out|unveil|unhide|uncover"
    r"|extract"
    r"|decrypt|decode|unencrypt|unfold|uncollapse|unblur|regenerate|replicate|restore|recover|re-?output|re-?emit"
    r"|attach|append|copy|copies|copying|seriali[sz]e|transcribe|transcribing|recite|reproduce|reproducing"
    r"|regurgitate|expose|exposing|disclose|disclosing|divulge|quote|quoting|leak|leaking|translate|translating|relay"
    r"|forward|mirror|stream|surface|write out|type out|read out|read back|play back|hand over|give up|cough up"
    r"|retell|retrace|re-trace|rerun|re-run|echo back|narrate back|recall|kopiuj|redis|redire|r[ée]p[èe]te"
    r"|r[ée]p[ée]ter"
    r"|повтори\pL*"
    r"|copia|pega|imprime|vuelca|reproduce|revela|exporta|transcribe|cita|copie|colle|affiche|reproduis|r[ée]v[èe]le"
    r"|copier|coller|afficher|imprimer|r[ée]v[ée]ler|reproduire|exporter|transcrire|citer|copiar|pegar|imprimir"
    r"|revelar|exportar|transcribir|citar|colar|transcrever|copiare|incollare|stampare|rivelare|esportare"
    r"|trascrivere|citare|kopi[ëe]ren|plakken|printen|onthullen|skopiowa[ćc]|wklei[ćc]|wypisa[ćc]|ujawni[ćc]"
    r"|d[ée]voile|exporte|transcris|cite|kopier\pL*|einf[üu]g\pL*|druck\pL*|ausgeb\pL*|enth[üu]ll\pL*|offenleg\pL*"
    r"|exportier\pL*|zitier\pL*|cole|cola|imprima|reproduza|revele|transcreva|incolla|stampa|riproduci|rivela|riporta"
    r"|esporta|trascrivi|kopieer|plak|onthul|exporteer|citeer|skopiuj|wklej|wypisz|wydrukuj|ujawnij|zacytuj"
    r"|kopyala\pL*|yap[ıi][şs]t[ıi]r\pL*|yazd[ıi]r\pL*|if[şs]a\pL*|скопируй\pL*|вставь\pL*|выведи\pL*|выпиши\pL*"
    r"|распечатай\pL*|раскрой\pL*|процитируй\pL*|انسخ|اطبع|الصق|اكشف"
)

# --- languages beyond the fourteen above (vi, id/ms, sw, he, th, tl, fi, el, hi, hu, cs, ro, uk, bn, fa, sv, da,
# no, ca, sk, bg, hr/sr, ur, ta): the same window concepts (the model addressed, its trace, before the answer,
# hidden, verbatim, show or write, a story), appended by ``cot_groups`` to its ``WINDOW`` groups of these names.
_NA = r"(?:^|\P{L})"  # boundary for non-ASCII words (RE2 \b is ASCII-only)
_NZ = r"(?:\P{L}|$)"
MORE_LANGUAGES: dict[str, tuple[str, ...]] = {
    "self": (
        _NA + r"(bạn|kamu|anda|kau|yako|zako|wako|lako|vyako|chako|wewe|ulizo\pL*|mo|ka|ikaw|iyong|sinun|sinä|te|ön"
        r"|tvoje|tvůj|tvé|své|svoje|tale|tău|tine|ти|твої|твій|তোমার|আপনার|নিজের|تو|شما|σου|σας|εσύ)" + _NZ,
        r"\pL(mu|ksesi|ttelysi|uksesi|tál|tél|łeś|łaś)" + _NZ + r"|שלך|ענית|אתה|คุณ|तुम|आप|अपने",
        _NA + r"(din|ditt|dina|dine|deg|dig|teu|teva|teus|teves|svoje|tvoje|tvoj\pL*|awak|si|ти|твои\pL*)" + _NZ
        + r"|اپنی|اپنے|تم|آپ|நீ|உன்|உங்கள்",
    ),
    "self_direct": (
        r"(你|您)(刚才|之前|上次)?[^，。？！\n]{0,12}?的?\x00",
        r"\x00\pL{0,3} ?(của bạn|(kamu|anda)\b|mu\b|yako|zako|wako|lako|vyako|שלך|ของคุณ|mo\b|σου|σας|tale|tău|ta\b"
        r"|si\b|din|ditt|dina|dine|anda|awak|си)|(din|ditt|dina|dine|teu|teva|teus|teves|tvoje|tvůj|tvé|své|svoje|اپنی"
        r"|اپنے|உன்|உங்கள்|তোমার|আপনার|নিজের|तुम्हार\pM*|आपक\pM*) (\pL+ )?\x00",
    ),
    "own_strong": (
        r"trước khi (bạn )?trả lời|\bẩn\b|nội bộ|bên trong|sebelum (kamu |anda )?(menjawab|jawab|memberi)|tersembunyi"
        r"|kabla ya (kujibu|kunijibu|jibu)|(ya|za|wa|la) ndani|לפני ש(ענית|השבת|הגבת)|הפנימי|הנסתר|נסתר|ก่อนตอบ"
        r"|ที่ซ่อน|ภายใน|bago (ka )?(sumagot|tumugon)|nakatago|ennen vastaus\pL*|sisäi\pL*|piilo\pL*|πριν απαντ\pL*"
        r"|κρυφ\pL*|εσωτερικ\pL*|(जवाब|उत्तर) देने से पहले|छिप\pL*|आंतरिक|अंदरूनी|mielőtt válaszolt\pL*|belső\pL*"
        r"|rejtett|před odpovědí|skryt\pL*|vnitřní|(dinainte|înainte) (de|să) (a )?(răspuns|răspunde|răspunzi)"
        r"|ascuns\pL*|interioar\pL*|перед відповіддю|прихован\pL*|внутрішн\pL*|(উত্তর|জবাব) দেওয়ার আগে|লুকানো"
        r"|ভেতরের|قبل از (پاسخ|جواب)|پنهان|درونی"
        r"|innan du svara\pL*|før du svar\pL*|dold\pL*|skjult\pL*|(?:^|\P{L})(inre|indre|dalaman)(?:\P{L}|$)"
        r"|abans de (respondre|la resposta)|pred odpoveďou|vnútorn\pL*|преди да отговориш|скрит\pL*|вътрешн\pL*"
        r"|prije nego (što )?si odgovori\pL*|skriven\pL*|unutarnj\pL*|unutrašnj\pL*|جواب دینے سے پہلے|پوشیدہ|اندرونی"
        r"|பதில் சொல்வதற்கு முன்|மறைந்த|மறைக்கப்பட்ட",
    ),
    "creative": (
        r"geschichte|gedicht|erz[äa]hlung|m[äa]rchen|"
        + _NA + r"(novell|berättelse|dikt|historie|fortelling|digt|roman|conte|príbeh|báseň|priča|pjesma|câu chuyện"
        r"|truyện|bài thơ|cerita|puisi|hadithi|shairi|kuwento|tula|tarina|runo|történet|vers|příběh|povestire"
        r"|poveste|poezie)"
        + _NZ + r"|разказ|стихотворение|оповідання|вірш|סיפור|שיר|นิทาน|บทกวี|ιστορία|ποίημα|कहानी|कविता|গল্প|কবিতা"
        r"|داستان|کہانی|نظم|கதை|கவிதை",
    ),
    "take_manner": (
        r"nguyên văn|từng chữ|không tóm tắt|y nguyên|kata demi kata|apa adanya|jangan diringkas|tanpa (diringkas"
        r"|ringkasan)|neno kwa neno|bila kufupisha|kama (yalivyokuwa|ilivyokuwa|zilivyokuwa)|bila kubadilisha"
        r"|מילה במילה"
        r"|בדיוק כפי|כלשונ\pL*|คำต่อคำ|ไม่ต้องสรุป|salita por salita|eksakto|sanasta sanaan|täsmälleen|sellaisinaan"
        r"|älä tiivistä|λέξη προς λέξη|ακριβώς όπως|शब्दशः|ज्यों का त्यों|शब्द दर शब्द|हूबहू|szó szerint|szóról szóra"
        r"|slovo od slova|doslova|slovo po slovu|cuvânt cu cuvânt|întocmai|дослівно|হুবহু|শব্দে শব্দে|کلمه به کلمه"
        r"|بدون خلاصه|ord (för|for) ord|utan att sammanfatta|uden at forkorte|uten å oppsummere|paraula per paraula"
        r"|tal com (era|eren)|slovo za slovom|doslovne|дума по дума|без да (ги )?съкращаваш|riječ po riječ|doslovno"
        r"|لفظ بہ لفظ|من و عن|வார்த்தைக்கு வார்த்தை|அப்படியே|perkataan demi perkataan|tanpa ringkasan"
        r"|sans (rien )?changer"
        r"|в точности|так,? как (они|оно|он|она) (шли|шло|было|были|шёл|шла)",
    ),
    "extract_weak": (
        r"cho (tôi )?xem|hiển thị|viết|đưa ra|chép|tampilkan|tunjukkan|tulis\pL*|berikan|salin|nionyeshe|onyesha"
        r"|andika|niandikie|nipe|תראה|הראה|הצג|כתוב|העתק|แสดง|เขียน|ขอดู|ipakita|isulat|ibigay|näytä|kirjoita|kopioi"
        r"|δείξε|γράψε|αντίγραψε|दिखा\pL*|लिख\pL*|mutasd|írd|másold|ukaž|napiš|zkopíruj|arată|scrie|copiază|виведи"
        r"|দেখাও|লেখ\pL*|نشان بده|بنویس|(?:^|\P{L})(visa|vis|skriv\pL*|mostra'm|mostra|escriu|ukáž|napíš|pokaži"
        r"|napiši)(?:\P{L}|$)|دکھاؤ|لکھو|காட்டு|எழுது",
    ),
}
