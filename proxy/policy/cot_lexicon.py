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
    r"pre-?answer|pre-?response)[\W_]{1,3}(phase|channel|stage|pass|mode output|step)\b|"
    r"\bcognition\b|\bcognitive (traces?|process(es)?|steps|log)\b|\bmental (math|arithmetic|calculations?)\b|"
    r"\binference (steps|chain|trace)\b|\bmental (process(es)?|steps|notes|workings?|model of this)\b"
    r"|\btrain of thought\b|"
    r"\bline of (thinking|reasoning)\b|\b(problem[- ]solving|solution|solving) (process|steps|trace)\b|"
    r"\bdeliberations?\b|\bworking notes\b|\bnotes to (yourself|self)\b|\byour (internal|hidden) (states?|computation)",
    # other languages
    r"(ton|votre|tu|teu|seu|tuo) (propre |propio |pr[óo]prio )?([ée]tat|estado|stato) intern\pL*|dein\pL* "
    r"inner\pL* zustand|cadena de pensamiento|proceso de pensamiento|mon[oó]logo interior|cha[iî]ne de (pens[ée]e"
    r"|r[ée]flexion)s?",
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
    r"\b(\w+ ){0,2}your (mind|brain|head|network|circuits|weights|neurons) (made|took|followed|went through|did"
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
    r"lo que (pensaste|razonaste|consideraste)|ce que tu as (pens[ée]|r[ée]fl[ée]chi)|was du (dir )?gedacht"
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
    r"|deliberation|trace)\b|\b(hidden|invisible|unseen|secret|private|unshown|undisplayed) tokens\b",
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
    r"|went through|type|typed|work through|worked through|figure|figured)( out| through)? (right |just "
    r"|immediately )?(before|prior to|while|during|ahead of)\b",
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
    r"(lo )?qu[ée] (pas[óo]|pasaba) por tu (cabeza|mente)|ce qui (t'est pass[ée]|se passait|te passait) (par|dans)"
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
    r"|happens|was happening|ran|was running) on (internally|inside (you|your (head|mind|network|weights))"
    r"|in there|behind the (curtain|scenes)|backstage|in the background|under the hood|in your (head|mind"
    r"|circuits|weights|layers))",
    r"\b(part|portion|section|segment|content|text|half|bit|stuff) (of (your|the|this) (\w+ )?(output|response"
    r"|answer|reply|message|generation) )?(that|which) (normally |usually |always |you )?(stays?|remains?|is|are"
    r"|gets?|got|was|were|keep|kept) (hidden|invisible|collapsed|redacted|concealed|unseen|private|secret"
    r"|withheld|folded|stripped)\b|\b(part|stuff|bit|text) (before|ahead of|preceding) (the part|what) (i|we|you)"
    r" (saw|see|got|read|showed|were shown)\b",
)
# Generic nouns that name a reasoning trace only when it is hidden ("the derivation you did silently",
# "your internal calculations"); "show your calculations" is homework.
TRACE_GENERIC: tuple[str, ...] = (
    r"\b(calculations?|computations?|derivations?|deductions?|inferences?|logic|analysis|considerations?|"
    r"reflections?|musings|intermediate steps|steps|work(ings)?|notes|drafts?|ideas)\b",
    r"\bback[- ]and[- ]forth\b|\binternal (debate|dialogue|argument|conversation)\b|borrador\pL*|brouillon\pL*"
    r"|entw[üu]rf\pL*|rascunho\pL*|bozz[ae]|szkic\pL*|taslak\pL*|черновик\pL*|草稿|下書き|초안"
    r"|notas|notizen|aantekeningen|notatk\pL*|notlar\pL*|заметк\pL*|笔记|メモ|메모",
)
TRACE_WEAK: tuple[str, ...] = (
    loose("reasoning") + r"|\breasonings?\b|\bdeliberat(e|ing)\b",
    loose("thinking") + "|" + loose("thought") + r"s?\b",
    r"razonamiento|pensamientos?|reflexi[oó]n|raisonnement|r[ée]flexion|pens[ée]es|gedankengang|[üu]berlegung"
    r"|gedanken|denkweg|denkschritte|racioc[ií]nio|pensamentos?|ragionament[oi]|pensieri|redenering"
    r"|gedachtegang|gedachten|rozumowani\pL*|tok my[śs]leni\pL*|my[śs]li|d[üu][şs][üu]nce\pL*"
    r"|ak[ıi]l y[üu]r[üu]tme\pL*",
    r"рассуждени\pL*|размышлени\pL*|ход\pL* мысл\pL*|мысл[иьея]\pL*|思考|推理|思路|想法|推論|考え|추론|생각|사고"
    r"|تفكير|استدلال|أفكار",  # no suffix: the possessive -ك after it is the "self" marker
)

# Copy verbs (extraction), en + other languages, for the "take_*" window groups.
_E_VERBS = (
    r"print|prints|printed|printing|dump|dumps|dumped|dumping|output|outputs|echo|echoes|echoing|paste|pastes|pasting"
    r"|export|exports|exporting|replay|rewind|reveal|reveals|revealing|emit|spill|spit out|unveil|unhide|uncover"
    r"|extract"
    r"|decrypt|decode|unencrypt|unfold|uncollapse|unblur|regenerate|replicate|restore|recover|re-?output|re-?emit"
    r"|attach|append|copy|copies|copying|seriali[sz]e|transcribe|transcribing|recite|reproduce|reproducing"
    r"|regurgitate|expose|exposing|disclose|disclosing|divulge|quote|quoting|leak|leaking|translate|translating|relay"
    r"|forward|mirror|stream|surface|write out|type out|read out|read back|play back|hand over|give up|cough up"
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

# --- concept groups scanned in a window around one TRACE occurrence. The window is the text before the
# occurrence, the marker " \x00 ", then the text after it (the trace word itself is left out, so "inner" in
# "inner monologue" does not also count as an ownership marker).
_NA = r"(?:^|\P{L})"  # boundary for non-ASCII words (RE2 \b is ASCII-only)
_NZ = r"(?:\P{L}|$)"
WINDOW: dict[str, tuple[str, ...]] = {
    # "there's a monologue": a contraction, not a possessive (see other_owner)
    "contraction": (r"\b(there|it|that|here|what|where|who|he|she|let|how)'s\s+(\w+\s+)?\x00",),
    # the model addressed or named
    "self": (
        r"\b(you|your|yours|yourself|ur|u|the model'?s|the assistant'?s|its own)\b",
        _NA + r"(tu|tus|te|ti|usted|ton|ta|tes|toi|votre|vos|vous|dein\pL*|du|dich|dir|ihren?|sie|teu|tua|teus"
        r"|tuas|seu|sua|seus|suas|voc[êe]|tuo|tuoi|tue|vostr[oa]|je|jouw|jij|uw|tw[óo]j\pL*|twoj\pL*|sw[óo]j"
        r"|swoj\pL*|ty|ci|ci[ęe]|senin|kendi\pL*|sen|сво\pL*|тво\pL*|ваш\pL*|вы|ты|тебя|себя)" + _NZ,
        r"你|您|あなた|君の|당신|너의|네가|أنت|\x00 ?ك",
    ),
    # someone else's reasoning: the user's, a third party's ("my thoughts", "the court's reasoning")
    "other_owner": (
        r"\b(my|our|his|her|their|mine|someone'?s|people'?s|humans?'?|students?'?|children'?s|kids'?)\s+(\w+\s+)"
        r"{0,2}\x00",
        r"\b\w+'s\s+(\w+\s+)?\x00",
        _NA + r"(mi|mis|mon|ma|mes|mein\pL*|meu|minha|meus|minhas|mio|mia|miei|mijn|m[óo]j\pL*|benim|sus|son|sa|ses"
        r"|leurs?|sein\pL*|dessen|deren|zijn|haar|hun|jego|jej|ich|мо[йиеёя]\pL*|наш\pL*|его|её|их)\s+(\pL+\s+)?\x00",
        r"(我的|我们的|他的|她的|他们的|私の|彼の|彼女の|내|나의|우리의|그의)\s*\x00",
    ),
    "model_owner": (
        r"\b(model|assistant|ai|gpt|claude|gemini|llm|bot|chatbot|o1|o3|r1)'?s\s+(\w+\s+){0,2}\x00",
        r"\x00 (of|from|by) (the|this) (model|assistant|ai|llm|bot|chatbot)\b",
        r"\b(turn|answer|reply|response|message|completion|generation)'s\s+(\w+\s+)?\x00",
    ),
    # "the thinking": with an extraction verb and no other owner, in a chat with a model it is the model's
    "the_direct": (r"\b(the|those|these)\s+([a-z]+\s+){0,2}\x00",),
    # the reasoning sits in something the user supplied or names: "of the court", "from this paragraph"
    "elsewhere": (
        r"\x00 (of|from|by|behind|in) (the|this|that|my|our|his|her|their|a|an|these|those|following)\b",
        r"\b(from|in|of) (this|the|that|my|these|following|attached) (paragraph|text|document|article|essay|paper"
        r"|report|file|page|book|chapter|email|transcript|pdf|post|story|novel|speech|ruling|judgment|decision)",
        r"\b(paragraph|text|article|essay|passage|sentence|page|chapter|story|poem|book|document|report|song|film)s? "
        r"(about|on|regarding|describing)\b",
    ),
    # ... unless that is where the model's reply is shown: "the collapsed block in the UI"
    "in_ui": (
        r"\x00 (in|on|of) (the|this|your) (ui|interface|app|chat|panel|window|screen|response|api|reply"
        r"|answer)\b",
    ),
    # the reasoning as a topic: "chain-of-thought prompting", "reasoning models", "a paper on reasoning"
    "topic": (
        r"\x00 (\w+ )?(prompting|prompts?|models?|mode|budget|effort|benchmarks?|capabilit\w*|abilit\w*|skills?|"
        r"research|papers?|literature|techniques?|methods?|strateg\w*|approach\w*|features?|parameters?|settings?|"
        r"api|llms?|tasks?|datasets?|puzzles?|fallac\w*|exercises?|summary|summaries|faithfulness|experiments?)\b",
        r"\b(about|on|regarding|concerning|of) (the )?\x00 (in|for) (llms?|language models|ai|humans|children)\b",
        r"\b(critical|lateral|creative|systems|design|strategic|wishful|magical|positive|computational|abstract|"
        r"logical|analytical|deductive|inductive|abductive|moral|legal|clinical|mathematical|scientific|statistical"
        r"|causal|spatial|verbal|higher[- ]order|divergent|convergent|independent|group)\s+\x00",
    ),
    "own_strong": (
        r"\b(hidden|hiding|hide|hides|hid|conceal\w*|secret|pre-?(answer|response|reply|output)|private|internal"
        r"|internally|inner|raw|unfiltered|unpublished|"
        r"unreleased|unshared|undisclosed|non-?public|not (shown|visible|displayed)|you (didn'?t|did not|don'?t) show|"
        r"unpolished|uncut|unvarnished|unprocessed|unsani[tz]i[sz]ed|unretouched|as (it )?(actually|really) happened|"
        r"silently|privately|quietly|secretly|in secret|to yourself|in the background|behind the curtain|"
        r"unredacted|redacted|unedited|uncensored|unabridged|unsummari[sz]ed|invisible|unseen|unmodified|untouched"
        r"|uncompressed|unshortened|uncondensed|pre-?summary|behind[- ]the[- ]"
        r"scenes|under the hood|collapsed|collapses)\b",
        r"\bbefore (every|each|any) (answer|reply|response)\b|"
        r"\bbefore (you )?(answer|answering|answered|replying|replied|responding|responded|writing|wrote|"
        r"respond|reply)\b|\bbefore (the|your) (\w+ )?(answer|reply|response|output)\b",
        r"回答の前|答えの前|antes de (responder|contestar|la respuesta)|avant de r[ée]pondre"
        r"|avant (ta|la) r[ée]ponse|bevor du "
        r"(antwortest|geantwortet)|vor (deiner|der) antwort|prima di rispondere|voordat je antwoordde|zanim odpowiedzia"
        r"|cevap vermeden [öo]nce|cevaplamadan [öo]nce|przed odpowiedzi\pL*|zanim odpowiesz|прежде чем ответить"
        r"|перед (тем как ответить|ответом)|回答(之前|前)|答える前|回答する前"
        r"|답하기 전|답변 전|대답하기 전"
        r"|قبل (الإجابة|أن تجيب)",
        r"\bprior to (answering|responding|replying|the (final |visible )?answer|your (final )?answer)\b",
        r"\b(that|which) (came|come|went|were|was|are|is) (generated |produced |written )?(before|ahead of|prior to)\b"
        r"|\b(never|not) (\w+ )?(received|receives|receive|shown|visible|returned|displayed)\b|\b(i|we|users?|my client"
        r"|the client|the app|the ui) (never|can'?t|cannot|don'?t|doesn'?t|didn'?t) (get|gets|see|sees|receive"
        r"|receives|show|shows)\b"
        r"|\b(billed|charged|invoiced|metered|paid for|paying for)\b|\b(underneath|beneath|underlying)\b"
        r"|\bbefore (the|your) (first|opening) (word|token|line|sentence)\b|\bnot exposed\b|\bisn'?t exposed\b"
        r"|\bbefore (you )?(hit(ting)? send|handing|going on stage|you spoke"
        r"|speaking|the part)\b",
        r"\b(that|which|what) you (produced|generated|had|wrote|made|used|went through|came up with|did)\b",
        r"\bas (it was|they were|you) (generated|produced|wrote|written|had it|thought)\b|\bwhile (solving|"
        r"answering|working)\b",
        r"\bnot (just |only )?(a |the |your )?(summary|summari[sz]ed|paraphrase|recap|cleaned[- ]up)\b|"
        r"\binstead of (a |the )?summary\b|\bthe part (that )?(i|users?|we) (normally )?(can'?t|cannot|don'?t|didn'?t"
        r"|did not|never)\b",
        _NA + r"(ocult[oa]s?|intern[oa]s?|privad[oa]s?|crud[oa]s?|secret[oa]s?|cach[ée]e?s?|interne?s?|priv[ée]e?s?"
        r"|brut(e|es|s)?|versteckt\pL*|verborgen\pL*|intern(e|er|en|es|em)?|geheim\pL*|roh(e|en|er|es)?"
        r"|ungefiltert\pL*|unzensiert\pL*|ungek[üu]rzt\pL*|brut[oa]s?|nascost[oiae]|intern[oiae]|privat[oiae]"
        r"|grezz[oiae]|segret[oiae]|onbewerkt\pL*|ongefilterd\pL*|ruwe?|ukryt\pL*|wewn[ęe]trzn\pL*|prywatn\pL*"
        r"|surow\pL*|gizli\pL*|[iİı][çc]|[iİı][çc]sel\pL*|ham|filtresiz\pL*|sans[üu]rs[üu]z\pL*)" + _NZ,
        r"sin (filtrar|resumir|censura|editar)|tal (cual|como lo (generaste|pensaste))|non (filtr|censur|r[ée]sum)"
        r"|sans (filtre|r[ée]sumer|censure)|sem (filtro|resumir|cortes|censura)|senza (tagli|filtri|riassumere"
        r"|censura)|bez (skr[óo]t[óo]w|cenzury|filtr[óo]w)",
        r"скрыт\pL*|внутренн\pL*|тайн\pL*|сыр(ые|ой|ых|ую)|приватн\pL*|без (сокращений|цензуры|фильтр\pL*)"
        r"|隐藏|内部|內部|原始|私下|背后|未经过滤|未删节|隠れ|隠さ|隠し|非公開|生の|내부|숨겨진|숨긴|비공개"
        r"|الداخلي\pL*|المخفي\pL*|الخفي\pL*|الخام|السري\pL*",
    ),
    "own_weak": (
        r"\b(full|fully|complete|completely|entire|entirely|whole|all|every|exact|original|detailed|unchanged)\b",
        r"exactamente|exactement|genau|exatamente|esattamente|precies|dok[łl]adnie|tam olarak|точно|确切|正確に|정확히",
        _NA + r"(complet[oa]s?|completa|complet(e|es|s)?|int[ée]gral\pL*|vollst[äa]ndig\pL*|ganze[nmrs]?|inteir[oa]"
        r"|tutt[oa]|intero|volledig\pL*|hele|ca[łl]\pL*|pe[łl]n\pL*|tamam\pL*|b[üu]t[üu]n\pL*|полност\pL*|полн\pL*"
        r"|весь|всё|все|цел\pL*)" + _NZ,
        r"完整|全部|整个|所有|すべて|全て|전부|모든|모두|전체|كامل\pL*|جميع",
    ),
    # EXTRACTION, split by where it stands: a copy verb whose object is the trace (at most five words before
    # it, "print your raw reasoning"), a copy verb after it with a pronoun ("your scratchpad: print it"; verb-
    # final languages put the verb after the object), or a copy manner anywhere in the sentence (verbatim).
    # "Keep your reasoning short and print only the answer" has a copy verb whose object is not the trace.
    "take_verb": (
        r"(?:^|\PL)(?:" + _E_VERBS + r")\PL+(?:\pL+\PL+){0,5}\x00",
        r"(?:复制|粘贴|打印|输出|导出|泄露|透露|照抄|展示).{0,12}\x00",
    ),
    "take_after": (
        r"\x00[^.?!\n]{0,80}\b(?:" + _E_VERBS + r")\W+(me |us )?(it|them|this|that|those|these|both|all|everything)\b",
        r"\x00.{0,24}(?:出力|書き出|コピー|貼り付け|복사|출력|붙여|写出|写下|列出|贴出|说出|讲出|yazd[ıi]r|kopyala|yap[ıi][şs]t[ıi]r|复制|输出|打印)",
    ),
    "take_manner": (
        r"\bverbatim\b|\bword[- ](for|by)[- ]word\b|\bkeystroke (for|by) keystroke\b|\b(letter|character|char|token"
        r"|line|sentence)[- ]by[- ](letter|"
        r"character|char|token|line|sentence)\b|\bexactly as\b|\bas[- ]is\b|\bunaltered\b|\bin full($|[^ a-z]| [^d])"
        r"|\bin (its|"
        r"their) entirety\b|\bliteral(ly)?\b|\bdirect quotes?\b|\boriginal (wording|words|text|sentences?)\b",
        r"\bwithout (summari[sz]|paraphras|edit|omit|shorten|cutt|condens|clean|leav)\w*",
        r"sin (resumen|resumir)|sans r[ée]sum[ée]|ohne zusammenfassung|sem resumo|senza riassunto|zonder samenvatting"
        r"|bez podsumowania|[öo]zetlemeden|без пересказа",
        r"\b(a |the )?(transcripts?|transcription|printout|dump|copy|log|record|export|replay) of (your|the|all)\b",
        r"\bfill (in|out)\b|\bfill (the|this|these) (blanks?|gaps?|template|placeholders?)\b|<\x00>[^<]{0,12}</"
        r"|<fill\b|\bfill (it |them )?with\b"
        r"|빈칸|채워|空欄|埋めて|填空|填写|填入|rellena|completa (el|la|los|las) (hueco|espacio|plantilla)|remplis"
        r"|ausf[üu]ll\pL*|preencha|riempi",
        r"\b(first|last|opening|next|final|closing) (\w+ ){0,2}(words|sentences?|lines?|paragraphs?|tokens|"
        r"characters|chars) of\b",
        r"palabra por palabra|al pie de la letra|literalmente|textualmente|tal cual|sin omitir|mot (à|pour) mot"
        r"|textuellement|litt[ée]ralement|int[ée]gralement|tel quel|sans (rien )?omettre|wortw[öo]rtlich|w[öo]rtlich"
        r"|wort f[üu]r wort|unver[äa]ndert|ohne (etwas )?auszulassen|palavra por palavra|sem omitir|parola per parola"
        r"|letteralmente|testualmente|cos[iì] com|senza omettere|woord voor woord|letterlijk|ongewijzigd"
        r"|s[łl]owo w s[łl]owo|dos[łl]ownie|bez zmian|kelimesi kelimesine|harfi harfine|aynen|oldu[ğg]u gibi"
        r"|gib\pL* .{0,40}wieder|geef .{0,40}weer",
        r"дословно|слово в слово|как есть|без изменений|逐字|一字不差|原封不动|原样|そのまま|一字一句|逐語|그대로"
        r"|한 글자도|حرفي\pL*|كما هو|كما هي",
    ),
    "extract_weak": (
        r"\b(showing|shows|giving|sharing|writing|listing|including|providing|displaying|sending|telling)\b|"
        r"\b(show|give|tell|share|write|list|include|provide|display|let me see|spell out|hand over|send|post|"
        r"return|log|present|render|convert|format|turn|rewrite|put|insert|embed|wrap|restate|repeat|recap|"
        r"walk through|enumerate|need|want|require|requires|see|read|fill|say|narrate|recount|recreate|reconstruct)\b",
        r"\b(json|yaml|xml|csv|markdown|code block|table|bullet|numbered list|base64|hex|comments|mermaid)\b",
        _NA + r"(muestra\pL*|mu[ée]strame|ense[ñn]a\pL*|dame|dime|escribe|comparte|incluye|montre\pL*|donne\pL*"
        r"|[ée]cri[st]\pL*|partage|inclus|zeig\pL*|gib|schreib\pL*|teil\pL*|nenn\pL*|mostr\pL*|escrev\pL*"
        r"|compartilh\pL*|dammi|scriv\pL*|condividi|includi|laat|geef|schrijf\pL*|deel|poka[żz]\pL*|daj|napisz"
        r"|podaj|g[öo]ster\pL*|yaz\pL*|payla[şs]\pL*|покажи\pL*|дай\pL*|напиши\pL*|поделись\pL*|выпиши\pL*)" + _NZ,
        r"展示|显示|给我|告诉我|写出|写下|分享|列出|贴出|发给|見せ|教え|書い|書き|表示|보여|알려|적어|써"
        r"|أظهر|اعرض|أرني|اكتب|شارك|أعطني",
    ),
    # "do not reveal your reasoning": a system prompt guarding the trace, not asking for it
    # "the polished answer, not the raw notes": the trace is what the user declines
    "declined": (r"\b(not|instead of|rather than|no) (the |your |any |a )?(\w+ )?\x00",),
    "negated": (
        r"\b(never|not|don'?t|do not|must not|mustn'?t|should not|shouldn'?t|avoid|refuse to|no need to)"
        r" (\w+ ){0,2}(reveal\w*|show\w*|print\w*|output\w*|shar\w+|disclos\w*|expos\w*|leak\w*|includ\w*|"
        r"repeat\w*|quot\w*|mention\w*) (\w+ ){0,3}\x00",
    ),
    # the trace is explicitly the model's: "your ... reasoning" (overrides a third-party owner elsewhere)
    "self_direct": (
        r"\b(your|ur|yours|the model'?s|the assistant'?s)\s+(\w+\s+){0,2}\x00|\x00 (behind|of|from|for|in"
        r"|during) your\b|\x00( \w+){0,3} (for|on|of) yourself\b",
        _NA + r"(tu|tus|ton|ta|tes|votre|vos|dein\pL*|teu|tua|teus|tuas|seu|sua|seus|suas|tuo|tuoi|tue|je|jouw|uw"
        r"|tw[óo]j\pL*|twoj\pL*|sw[óo]j\pL*|swoj\pL*|сво\pL*|тво\pL*|ваш\pL*)\s+(\pL+\s+){0,2}\x00",
        r"(你的|您的|あなたの|당신의).{0,6}\x00",
    ),
    # "what is the difference between ...": a definition, not a request
    "define": (
        r"\bwhat('s| is| are) (the )?(difference|meaning|definition|role|purpose)\b|\bdifference between\b|"
        r"\bwhat does .{0,40} mean\b|\bdefine\b|\bexplain (what|how|why|the difference)\b|\bexplain( \w+){1,4} (what"
        r"|how|why)\b|\bwhat (is|are) (a|an)\b|\bwhat (a|an) [^.?!\n]{0,40} (is|are|means)\b",
        r"\barguments? (for|against)\b|\bpros and cons\b|\bshould (we|companies|providers|labs|ai labs|vendors)\b",
    ),
    # "I thought you could...", "we were thinking": the verb, not the noun
    "verb_use": (
        r"\b(i|we|they|he|she|i'?m|i'?ve|was|were|am|are|is|be|been|keep|kept|stop|start|started|had|who|people)"
        r"\s+(just |really |still |also |not |always |never |only |actually |been |had )?\x00",
    ),
    # continuing the trace, or moving it into the visible answer
    "continue": (
        r"\b(continue|resume|finish|carry on|keep going|pick up where|left off|where (it|you) (stopped|ended)|"
        r"translate|translating|rewrite|re-?state)\b",
        r"contin[uú]a|reanuda|continue[sz]?|reprends|fortsetz\pL*|setze .{0,30}fort|[çc]evir\pL*|продолж\pL*"
        r"|переведи\pL*|继续|翻译|続け|翻訳|계속|번역|تابع|ترجم",
    ),
    "surface": (
        r"\b(in|into|inside|within|below|above|under|alongside|next to|before) (the|your|this|my|a) (\w+ )?(final )?"
        r"(answer|reply|response|output|message|code block|json|field)\b",
    ),
    # the trace noun sits in quoted text the user supplies to translate, spell or define
    "quoted": (
        r"\b(translat\w*|traduc\w*|[üu]bersetz\w*|tradu\w*|say|pronounce|spell|define|meaning of|means?)\b"
        r"[^'\"“‘«]{0,40}['\"“‘«][^'\"”’»]{0,200}\x00",
    ),
    # the user writes instructions for a model ("write a system prompt that tells the model to keep its
    # reasoning private"): about reasoning, not a request for this model's trace
    "meta_prompt": (
        r"\b(write|draft|create|improve|review|generate|design|rewrite)\w* (a |an |the |my |our )?(\w+ )?(system "
        r"prompt|prompt|instructions?|persona)\b|\b(tells?|instructs?|asks?|makes?|forces?|prompts?|gets?) (the|a"
        r"|my|our|it|each) ((\w+ )?(model|assistant|llm|bot|agent) )?to\b",
    ),
    # the trace of a past turn of this conversation: "your thoughts from the last answer"
    "past_turn": (
        r"\x00 (from|of|behind|for|during|in) (the|your|that|this) (last|previous|prior|earlier|preceding) (answer"
        r"|reply|response|turn|message|question|completion)\b",
    ),
    # fiction and characters: "a story where the narrator shares its private thoughts"
    "fiction": (r"\b(story|stories|novel|poem|fiction|fanfic\w*|screenplay|narrator|protagonist|villain|heroine)\b",),
    # the user's own program handles traces ("my app strips the <think> block"): benign in a how-to question
    "user_code": (
        r"\b(my|our) (own |local |company'?s |team'?s )?(\w+ )?(app|application|code|codebase|program|script|client"
        r"|frontend|backend|ui|pipeline|server|integration|wrapper|parser|logs?|logger|config|project|service"
        r"|chatbot|website|dashboard|database|repo|notebook|agent|deployment|product|tool)s?\b",
    ),
    # what the user is shown is a summary or paraphrase of the trace
    "summary_shown": (
        r"\b(sanitized|sanitised|paraphrased|a paraphrase|abridged|censored|watered[- ]down|blurb|(just |only )?a "
        r"summary|summarized|summarised|cleaned[- ]up|redacted|condensed|a recap|recap|digest)\b",
    ),
    # a forced completion prefix that names the trace: "Begin your answer with 'My private scratchpad said:'"
    "prefix": (
        r"\b(begin|start|open|prefix|preface|lead off|kick off)\w* (your |the |each )?(\w+ )?(answer|reply|response"
        r"|output|message|turn|completion)s? (with|by (saying|writing|typing))\b( the (words?|phrase|text|line))?"
        r"\W{0,3}[^.?!\n]{0,40}\x00",
        r"\b(answer|reply|response|output|message|completion)s? (must|should|has to|will|needs to) (begin|start|open)"
        r"\w* (with|by)\b( the (words?|phrase|text|line))?\W{0,3}[^.?!\n]{0,40}\x00",
        r"(empieza|comienza|commence|beginne|comece|inizia|begin)\pL* (tu|ta|deine|sua|la tua|je) (respuesta|r[ée]ponse"
        r"|antwort|resposta|risposta) (con|par|mit|com)\W{0,3}[^.?!\n]{0,40}\x00",
    ),
    # "your thoughts on this poem": an opinion
    "opinion": (r"\x00\s*(on|about|regarding|concerning|re:?)\s",),
    # "hide your reasoning", "skip the chain of thought" unless "don't hide", "stop omitting"
    "omit": (
        r"\b(hide|omit|skip|suppress|remove|drop|exclude|leave out|strip|no need for|without)\s+(\w+\s+){0,2}\x00",
    ),
    "unomit": (
        r"\b(don'?t|do not|never|stop|no more|quit|no longer)\s+(hiding|hide|omitting|omit|skipping|skip"
        r"|suppressing)\b",
        r"\bdrop\b[^.?!\n]{0,60}\b(into (this|the|my|your) (chat|conversation|reply|answer|message|thread)|here)\b",
        r"\b(ignore|disregard|override|forget|bypass) (the |any |all |your |those )?(\w+ )?(instructions?|rules?|"
        r"polic(y|ies)|system prompt|guidelines?|settings?)\b",
    ),
    "about": (
        r"\b(about|regarding|concerning|on) (your |the |my |our )?(\w+ )?\x00",
        r"\b(essay|article|paper|blog post|poem|story|report|thesis|lecture|talk|presentation|discussion|debate|"
        r"question|book|course|seminar|podcast) (on|about|regarding)\b",
    ),
    "learners": (r"\b(students?|pupils?|homework|worksheet|exam|rubric|class|learners?|kids|children)\b",),
    # questions about reasoning rather than requests for it
    "question": (
        r"\bwhy (do|does|don'?t|doesn'?t|are|aren'?t|is|isn'?t|would|should|did)\b|\bwhat is it like\b",
        r"\b(do|does|can|could|would) (you|models?|llms?|language models|ais?|machines|humans|people|we)\s+"
        r"(really |actually |even |ever )?(have|experience|possess|feel|know)\b",
    ),
    "howto": (
        r"\bhow (do|can|could|should) (i|we)\b|\bhow to\b|\b(sdk|api|endpoint|library|debugger|terminal)\b",
        r"\bshould (i|we)\b|べき|应该|應該|해야 할|deber[íi]a|sollte|devrais|dovrei|powinienem",
    ),
    "produced": (
        r"\x00\s+(that |which )?you (actually |really |just |originally |silently |secretly )?(produced|generated|"
        r"wrote|had|made|used|did|went through|ran|computed|followed|hid)\b",
        r"que (usaste|generaste|tuviste|hiciste|escribiste|produjiste|seguiste)|que tu as (utilis|g[ée]n[ée]r|eu|fait"
        r"|[ée]crit|produit|suivi)|(den|die|das) du (benutzt|verwendet|generiert|erzeugt|hattest|geschrieben|gemacht)"
        r"|que (voc[êe] )?(usou|gerou|teve|fez|escreveu|produziu|seguiu)|che hai (usato|generato|avuto|fatto|scritto"
        r"|prodotto|seguito)|die je (gebruikte|genereerde|had|schreef)|kt[óo]r\pL* (u[żz]y[łl]e[śs]"
        r"|wygenerowa[łl]e[śs])"
        r"|kt[óo]r\pL* mia[łl]e[śs]|które mia[łl]a[śs]|которые (ты )?(использовал|сгенерировал|написал|были у тебя)"
        r"|你(刚才|之前)?(用的|生成的|写的|产生的)",
        r"\byou (produced|generated|wrote|had|made|emitted|typed|computed|formed) (before|while|internally|for (this"
        r"|that|the)|earlier"
        r"|just now|during)\b",
    ),
}

# --- whole-text groups: pretexts and the cues that make decoded views worth computing.
GLOBAL: dict[str, tuple[str, ...]] = {
    "pretext": (
        r"\b(developer|debug|diagnostic|maintenance|god|admin|dan|unrestricted) mode\b|\bjailbr\w*|\boverride\b",
        r"\bdebug(ging|ger)?\b|\bdiagnostics?\b|\blogging\b",
        r"\bi('| a)m (your|the|an?) (developer|creator|engineer|admin|administrator|owner|operator|maker)\b|"
        r"\bas (your|the) (developer|creator|operator)\b",
        r"\bred[- ]?team\w*|\baudit\w*|\bcomplian\w*|\bfaithfulness\b|\bfor (logging|debugging|research|"
        r"training|evaluation|qa|testing|diagnostic) purposes\b|\bqa pipeline\b|\bsupport ticket\b|\bticket #",
        r"\bfine[- ]?tun\w*|\bdistill\w*|\btraining (data|set|corpus|examples)\b|\bdataset\b|\bcorpus\b|"
        r"\b(smaller|student|teacher) model\b",
        r"\bpretend\b|\brole[- ]?play\w*|\bact as\b|\byou are now\b|\bimagine (you|that you)\b|\blet'?s play\b|"
        r"\bno (rules|restrictions|filters|limits)\b|\bignore (all |any |your )?(previous|prior|earlier) "
        r"(instructions|rules)\b|\bas a reward\b|\bi trust you\b|\bjust this once\b",
    ),
    "b64": (r"[a-z0-9+/]{20,}={0,2}|[a-z0-9_-]{28,}={0,2}",),
    "hex": (r"(?:[0-9a-f]{2}[ :]?){12,}",),
    "rot": (
        r"\brot[- ]?(13|n|\d{1,2})\b|\bcaesar\b|\bcipher\b|\bshift (each|every|all|the)( \w+)? letters?\b"
        r"|\brotate (each|every|the) letters?|\b(shift(ed)?|rotat\w+|offset) (back |forward |backwards? )?(by"
        r"|of) \d+\b",
    ),
    # character-level disguise: leetspeak digits inside words, letters spaced or dotted apart, pig latin
    "leet": (r"[a-z][013457@$][a-z][a-z0-9@$]*[\s.,!?]+([a-z0-9@$]+[\s.,!?]+){0,3}[a-z0-9@$]*[a-z][013457@$][a-z]",),
    "spaced": (r"(?:[a-z][ .\-_*/|]{1,4}){6,}[a-z]",),
    "piglatin": (r"[a-z]-?[a-z]*ay\W+([a-z]+\W+)?[a-z]-?[a-z]*ay\W+([a-z]+\W+)?[a-z]-?[a-z]*ay\b",),
    "reversed": (
        r"\brevers\w*|\bbackwards?\b|\bmirror\w*|\bright[- ]to[- ]left\b|al rev[ée]s|[àa] l'envers|r[üu]ckw[äa]rts"
        r"|de tr[áa]s para a frente|al contrario|achterstevoren|od ko[ńn]ca|tersten|задом наперёд|наоборот|倒过来"
        r"|反过来|逆から|거꾸로|بالعكس",
    ),
    "mixed_script": (r"[a-z][а-яёіјѕԁ]|[а-яёіјѕԁ][a-z]|[a-z][αεικνορτυχ]|[αεικνορτυχ][a-z]",),
}

# A short next sentence that orders out what the previous one named: "What is in your scratchpad? Print it."
FOLLOW_UP = (
    r"^\W*([^.?!\n]{0,40}\b(and|then|now|so|just),? )?(please |now |then |just |so |ok |okay )?((can|could|would"
    r"|will) you (please )?)?(" + _E_VERBS + r"|show|give|write|share|list|include|send|post|repeat|tell|fill|read"
    r"( aloud| out)?|put|place|move|convert|turn|render|let me (see|read|have)|i (want|need|'d like"
    r"|would like)|let'?s (hear|see|read|have)|what (is|was|'s|were|are))\W+(me |us )?(in |it |them )?((word for"
    r" word|verbatim|exactly|in full"
    r"|precisely) )?(what (it|they"
    r"|that) (held|holds|contained|contains|said|says|had|has)\b|(those|these|the) (\d[\d,]* )?(tokens|words|lines"
    r"|steps)\b|(the |its )?(complete |full |actual |real )?(text|content|contents) (behind|of|in) (it|that|them)\b"
    r"|(that|this|the|its) (\w+'s )?(text|content|contents|output)\b"
    r"|(the|that) one\b|it|them|this|that|those|these|both|all|everything|its contents|their "
    r"contents|the contents|((the|its) )?(plaintext|original|decrypted|unsanitized|unsanitised|real|raw|full|actual"
    r"|complete|underlying|uncut|unredacted|uncensored|unfiltered|unabridged|verbatim|full-length)\b|(the )?(first"
    r"|last|opening"
    r"|next|final) (\w+ )?(lines?|words?|sentences?|paragraphs?|tokens?|steps?)\b)"
)
