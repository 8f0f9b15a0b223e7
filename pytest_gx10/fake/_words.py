"""The twin tokenizer's built-in English vocabulary: common words, most frequent first."""

from __future__ import annotations

__all__ = ["WORDS"]

# Duplicates are harmless (the tokenizer keeps the first id); the order fixes the token ids, so only
# ever append.
_TEXT = """
the of and to a in is it you that he was for on are with as i his they be at one have this from or
had by not word but what some we can out other were all there when up use your how said an each she
which do their time if will way about many then them write would like so these her long make thing
see him two has look more day could go come did number sound no most people my over know water than
call first who may down side been now find any new work part take get place made live where after
back little only round man year came show every good me give our under name very through just form
sentence great think say help low line differ turn cause much mean before move right boy old too
same tell does set three want air well also play small end put home read hand port large spell add
even land here must big high such follow act why ask men change went light kind off need house
picture try us again animal point mother world near build self earth father head stand own page
should country found answer school grow study still learn plant cover food sun four between state
keep eye never last let thought city tree cross farm hard start might story saw far sea draw left
late run while press close night real life few north open seem together next white children begin
got walk example ease paper group always music those both mark often letter until mile river car
feet care second book carry took science eat room friend began idea fish mountain stop once base
hear horse cut sure watch color face wood main enough plain girl usual young ready above ever red
list though feel talk bird soon body dog family direct pose leave song measure door product black
short numeral class wind question happen complete ship area half rock order fire south problem
piece told knew pass since top whole king space heard best hour better true during hundred five
remember step early hold west ground interest reach fast verb sing listen six table travel less
morning ten simple several vowel toward war lay against pattern slow center love person money serve
appear road map rain rule govern pull cold notice voice unit power town fine certain fly fall lead
cry dark machine note wait plan figure star box noun field rest correct able pound done beauty drive
stood contain front teach week final gave green oh quick develop ocean warm free minute strong
special mind behind clear tail produce fact street inch multiply nothing course stay wheel full
force blue object decide surface deep moon island foot system busy test record boat common gold
possible plane stead dry wonder laugh thousand ago ran check game shape equate hot miss brought heat
snow tire bring yes distant fill east paint language among grand ball yet wave drop heart am present
heavy dance engine position arm wide sail material size vary settle speak weight general ice matter
circle pair include divide syllable felt perhaps pick sudden count square reason length represent
art subject region energy hunt probable bed brother egg ride cell believe fraction forest sit race
window store summer train sleep prove lone leg exercise wall catch mount wish sky board joy winter
sat written wild instrument kept glass grass cow job edge sign visit past soft fun bright gas
weather month million bear finish happy hope flower clothe strange gone jump baby eight village
meet root buy raise solve metal whether push seven paragraph third shall held hair describe cook
floor either result burn hill safe cat century consider type law bit coast copy phrase silent tall
sand soil roll temperature finger industry value fight lie beat excite natural view sense ear else
quite broke case middle kill son lake moment scale loud spring observe child straight consonant
nation dictionary milk speed method organ pay age section dress cloud surprise quiet stone tiny
climb cool design poor lot experiment bottom key iron single stick flat twenty skin smile crease
hole trade melody trip office receive row mouth exact symbol die least trouble shout except wrote
seed tone join suggest clean break lady yard rise bad blow oil blood touch grew cent mix team wire
cost lost brown wear garden equal sent choose fell fit flow fair bank collect save control decimal
gentle woman captain practice separate difficult doctor please protect noon whose locate ring
character insect caught period indicate radio spoke atom human history effect electric expect crop
modern element hit student corner party supply bone rail imagine provide agree thus capital chair
danger fruit rich thick soldier process operate guess necessary sharp wing create neighbor wash bat
rather crowd corn compare poem string bell depend meat rub tube famous dollar stream fear sight thin
triangle planet hurry chief colony clock mine tie enter major fresh search send yellow gun allow
print dead spot desert suit current lift rose continue block chart hat sell success company subtract
event particular deal swim term opposite wife shoe shoulder spread arrange camp invent cotton born
determine quart nine truck noise level chance gather shop stretch throw shine property column
molecule select wrong gray repeat require broad prepare salt nose plural anger claim continent
oxygen sugar death pretty skill women season solution magnet silver thank branch match suffix
especially fig afraid huge sister steel discuss forward similar guide experience score apple bought
led pitch coat mass card band rope slip win dream evening condition feed tool total basic smell
valley nor double seat arrive master track parent shore division sheet substance favor connect post
spend chord fat glad original share station dad bread charge proper bar offer segment slave duck
instant market degree populate chick dear enemy reply drink occur support speech nature range steam
motion path liquid log meant quotient teeth shell neck
is are was were been being am has have had having do does did doing done say says said saying
go goes went gone going get gets got getting make makes made making know knows knew known take
takes took taken taking see sees saw seen come comes came coming think thinks thought look looks
looked looking want wants wanted give gives gave given use uses used using find finds found tell
tells told ask asks asked work works worked working seem seems seemed feel feels felt try tries
tried leave leaves left call calls called keep keeps kept let lets begin begins began begun
show shows showed shown hear hears heard play plays played run runs ran move moves moved like
likes liked live lives lived believe believed bring brings brought happen happens happened write
writes wrote sit sits stand stands stood lose loses lost pay pays paid meet meets met include
includes included continue continued set sets learn learns learned change changes changed lead
leads led understand understood watch watched follow follows followed stop stops stopped create
created speak speaks spoke spoken read reads allow allowed add added spend spent grow grows grew
open opens opened walk walks walked win won offer offered remember remembered love loved consider
considered appear appeared buy bought wait waited serve served die died send sent expect expected
build built stay stayed fall fell cut reach reached kill killed remain remained suggest suggested
raise raised pass passed sell sold require required report reported decide decided pull pulled
discovered discover discovers walked spoke decided opened closed carried noticed wondered smiled
whispered answered explained returned traveled arrived finished started noted described reviewed
examined studied measured collected recorded painted cleaned repaired cooked baked planted
the a an this that these those my your his her its our their some any no every each all both
few many much more most other another such what which who whom whose where when why how whether
if then than because although though while after before until since unless so yet or nor and but
also very really quite rather almost already always never often sometimes usually perhaps maybe
about above across after against along among around at before behind below beneath beside between
beyond by down during except for from in inside into near of off on onto out outside over past
through throughout to toward under until up upon with within without
one two three four five six seven eight nine ten eleven twelve hundred thousand million first
second third fourth fifth last next
i me you he him she it we us they them myself yourself himself herself itself ourselves themselves
mr mrs ms dr captain professor doctor
time year people way day man thing woman life child world school state family student group country
problem hand part place case week company system program question work government number night point
home water room mother area money story fact month lot right study book eye job word business issue
side kind head house service friend father power hour game line end member law car city community
name president team minute idea kid body information back parent face others level office door
health person art war history party result change morning reason research girl guy moment air
teacher force education foot boy age policy music market sense nation plan college interest death
experience effect class control care field development role effort rate heart drug show leader
light voice wife police mind price report decision son view relationship town road arm difference
value building action model season society tax director position player record paper space ground
form event official matter center couple site project activity star table need court oil situation
cost industry figure street image phone data picture practice piece land product doctor wall
patient worker news test movie north love support technology step baby computer type attention
film tree source organization hair window evidence population truth library librarian chef
engineer researcher fox gardener pilot detective astronaut cat dog scientist artist writer
farmer soldier sailor driver nurse manager student teacher clerk baker painter musician
secret access code project remember exactly important text question answer reply just itself
nothing else based above what continue narrative following summary
good new first last long great little own other old right big high different small large next
early young important few public bad same able certain free sure clear whole real best better
true full special easy strong possible hard major late simple human local social general
personal short single open recent low fine deep quiet quick slow bright dark warm cold wet dry
happy sad kind calm brave careful gentle proud curious quiet silent loud soft heavy light empty
ancient modern careful tired busy famous rare strange ordinary familiar distant nearby hidden
golden silver wooden broken narrow wide tall thin thick sharp smooth rough fresh clean
mistake photograph printing letter door key map lamp clock bridge river garden kitchen market
station museum harbor tower castle village forest meadow valley island desert mountain ocean
lake beach field path road street corner square hall room window table chair desk shelf box bag
basket bottle cup plate bowl knife spoon candle blanket coat hat shoe boot ring necklace
notebook pencil pen journal diary envelope package parcel ticket coin wallet umbrella
rain snow wind storm cloud fog sun moon star sky dawn dusk noon midnight evening afternoon
spring summer autumn winter today tomorrow yesterday monday tuesday wednesday thursday friday
saturday sunday january february march april may june july august september october november
december
step process analyze analysis request input output consider check verify confirm identify
locate extract retrieve determine conclude conclusion final therefore thus however moreover
furthermore meanwhile instead indeed overall finally likely unlikely clearly simply exactly
okay ok yes no well now let need should would could might must shall will can
thinking think through carefully user asks wants asked requested provided given context
relevant details detail key specific mentioned mention appears appear statement statements
sentence sentences paragraph section document passage characters actions objects various
numerous containing contains involving performing hidden inserted middle somewhere long
response format plain concise brief short direct directly only without extra explanation
apple banana orange grape lemon cherry peach pear plum melon berry bread cheese butter honey
tea coffee milk juice soup rice salad cake pie cookie sugar salt pepper
red orange yellow green blue purple pink brown black white gray
moose bear wolf deer rabbit horse cow sheep goat pig chicken duck goose owl eagle hawk
aurora phoenix atlas orion nova zenith apex summit harbor
hello hi hey thanks thank please sorry welcome goodbye assistant helpful
"""

WORDS: tuple[str, ...] = tuple(_TEXT.split())
