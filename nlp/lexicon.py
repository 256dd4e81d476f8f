"""Cue lexicons for the classifier and the grader, as plain data.

Each table maps a code to regular-expression sources. Most entries are plain
phrases; English entries carry ``\\b`` so that "will" does not match inside
"willing". Entries are written in the form that :func:`nlp.normalize.normalize`
produces: NFKC (half-width ASCII punctuation and digits), simplified characters.
The codes of CHANNELS and DEMANDS are the channel and demand codes of the label
set. Phrases were written from the label definitions and invented examples.
"""

from __future__ import annotations


def _phrases(text: str) -> tuple[str, ...]:
    """Split a whitespace-separated block of phrases into a tuple."""
    return tuple(text.split())


# Offline protest: a channel of its own, and a public-impact signal.
OFFLINE_PROTEST = (
    "拉横幅",
    "拉条幅",
    "横幅",
    "车展维权",
    "车顶维权",
    "静坐",
    "堵门",
    r"\bprotest\w*",
)

# Organisations and routes a customer can take a complaint to. A mention alone
# is not an action: the classifier also needs a completed-action marker in the
# same clause (or one of the narrative channels below).
CHANNELS: dict[str, tuple[str, ...]] = {
    "12315": ("12315", "全国12315平台", "红盾网"),
    "consumer_association": (
        "消协",
        "消费者协会",
        "消委会",
        "消保委",
        "消费者权益保护委员会",
        r"\bconsumer (?:association|council)\b",
    ),
    "market_regulator": (
        "市场监管局",
        "市场监督管理局",
        "市监局",
        "工商局",
        "工商部门",
        "市场监管部门",
        r"\bmarket regulat\w*",
    ),
    "dpac": ("缺陷产品管理中心", "缺陷产品召回中心", "缺陷管理中心", "质量发展局"),
    "12345": ("12345", "市长热线", "政务热线", "市民热线"),
    "12365auto": ("车质网", "12365auto"),
    "heimao": ("黑猫投诉", "黑猫平台", "黑猫上", "在黑猫"),
    "media": (
        "媒体",
        "电视台",
        "记者",
        "报社",
        "央视",
        "帮忙栏目",
        "新闻热线",
        "曝光台",
        r"\b(?:journalist|reporter|the press|tv station)\b",
    ),
    "lawyer": ("律师函", "催告函", "律师", r"\blawyer\b", r"\battorney\b"),
    "court": (
        "起诉",
        "法院",
        "仲裁",
        "诉讼",
        "立案",
        "告上法庭",
        r"\bsued\b",
        r"\blawsuit\b",
        r"\bsmall claims\b",
    ),
    "police": ("报警", "报了警", "派出所", "交警", r"\bpolice\b"),
    "offline_protest": OFFLINE_PROTEST,
    "company": (
        "客服",
        "400",
        "热线",
        "工单",
        "售后经理",
        "店长",
        "总部",
        "大客户部",
        "投诉电话",
        "APP里",
        "APP上",
        "app里",
        "app上",
        r"\bcustomer (?:care|service|support)\b",
        r"\bsupport\b",
        r"\bhotline\b",
        r"\bdealer(?:ship)?\b",
        r"\bservice (?:center|centre)\b",
    ),
}

# Channel entries that describe an action by themselves in a narrative
# ("车主在门店拉横幅", "据某电视台报道"), unless the clause also has a threat,
# question or negation marker.
NARRATIVE_CHANNELS: dict[str, tuple[str, ...]] = {
    "media": (
        r"据.{0,8}报道",
        "记者了解到",
        "记者获悉",
        "记者调查",
        "本台",
        "本报",
        "栏目组",
        "媒体报道",
        "接到.{0,4}车主.{0,4}(?:投诉|求助|反映)",
    ),
    "offline_protest": ("拉横幅维权", "车展上维权", "在门店维权", "在店里拉横幅"),
    "lawyer": ("受当事人委托", "律师函已", "已发律师函", "发出律师函"),
}

# Verbs of complaining. With no organisation named in the clause, a completed
# complaint verb means the company itself (its store, hotline or app).
COMPLAINT_VERBS = (
    "投诉",
    "举报",
    "申诉",
    "反映",
    "维权",
    "联名信",
    "书面投诉",
    "正式投诉",
    "工单投诉",
    r"\bcomplain(?:ed|t)?\b",
    r"\bfiled\b",
    r"\breported\b",
)

# Contacts that are ordinary service unless the customer requests more than
# ordinary fulfilment (refund, compensation, apology ...).
SERVICE_CONTACTS = ("客服", "400", "热线", r"\bsupport\b", r"\bhotline\b")

# Markers in the same clause that show an action already happened.
COMPLETED_MARKERS = (
    "已经",
    "已",
    "刚刚",
    "刚才",
    "昨天",
    "前天",
    "上周",
    "上个月",
    "之前",
    "早就",
    "今天去",
    "今天上午",
    "今天下午",
    "今早",
    "入咗",
    # "不投诉了,直接起诉": a lawsuit announced as decided, beyond a complaint.
    r"直接(?=起诉|告上法庭|走法律程序|申请仲裁)",
    r"(?:投诉|举报|反映|申诉|打|报|发|找|去|提交|寄|联系|致电|起诉|告|写|递交|交|拨打|拨|上)(?:了|过|咗)",
    "提交",
    "递交",
    "寄出",
    "寄到",
    "寄给",
    "发出",
    "受理",
    "回复说",
    "答复说",
    "工单号",
    "投诉编号",
    "立案了",
    "报道",
    "曝光了",
    r"\b(?:filed|lodged|submitted|emailed|e-mailed|called|phoned|contacted|reported)\b",
    r"\bhave (?:reported|complained|filed|contacted)\b",
    r"\bwrote to\b",
    r"\bopened a (?:ticket|case)\b",
    r"\braised a (?:ticket|complaint)\b",
    r"\bescalated\b",
)

# Markers that turn a channel into a threat (an action not yet taken).
THREAT_MARKERS = (
    "再不",
    "再没人",
    "不然",
    "否则",
    "要是再",
    "如果再",
    "如果还",
    "还不.{0,6}就",
    "就去",
    "就打",
    "就找",
    "就告",
    "就投诉",
    "就起诉",
    "就发",
    "就上",
    "就拉",
    "就报",
    "准备",
    "打算",
    "考虑",
    "要去",
    "要投诉",
    "要起诉",
    "要告",
    "想投诉",
    "会去",
    "想去",
    "将会",
    "将",
    "明天去",
    "明天就",
    "下周去",
    "周一去",
    "过两天",
    "回头去",
    "等着",
    "走着瞧",
    "大不了",
    "不排除",
    "保留.{0,6}权利",
    "下一步",
    "实在不行",
    r"\bwill\b",
    r"\bgoing to\b",
    r"\bgonna\b",
    r"\bplan(?:ning)? to\b",
    r"\bthinking (?:of|about)\b",
    r"\bconsidering\b",
    r"\bnext step\b",
    r"\bif (?:they|you) don'?t\b",
)

# Markers showing that an action did not happen.
NEGATED_ACTIONS = (
    "没投诉",
    "没有投诉",
    "还没投诉",
    "不投诉",
    "不想投诉",
    "懒得投诉",
    "没去",
    "还没去",
    "没联系",
    "还没联系",
    "没打",
    "没报警",
    "没找",
    "投诉无门",
    "不知道.{0,4}(?:投诉|找谁)",
    r"\b(?:haven'?t|didn'?t|not yet|never) (?:\w+ )?"
    r"(?:filed|complained|contacted|reported|called)\b",
)

# Advice or questions about channels: "大家可以去12315", "12315有用吗".
ADVICE_MARKERS = (
    "建议",
    "可以去",
    "可以向",
    "可以打",
    "大家",
    "你可以",
    "你们可以",
    "记得",
    "应该去",
    "教你",
    "攻略",
    "如何",
    "怎么",
    "有用吗",
    "有没有用",
    "管用吗",
    "能不能",
    "可不可以",
    r"\bhow (?:do|to|can)\b",
    r"\bshould i\b",
)

# Demands that a customer only makes toward someone who owes them something.
STRONG_DEMANDS: dict[str, tuple[str, ...]] = {
    "return_car": (
        "退车",
        "把车退了",
        "退掉",
        "退一赔三",
        r"\breturn (?:the|my) car\b",
        r"\bbuy ?back\b",
    ),
    "exchange_car": (
        "换车",
        "换新车",
        "换一台",
        "换辆新",
        r"\breplace (?:the|my) car\b",
    ),
    "refund": ("退定金", "退订金", "退还", "退钱", "返还", "退差价", r"\bmoney back\b"),
    "compensation": (
        "赔偿",
        "补偿",
        "补差价",
        "违约金",
        "代步车",
        "赔钱",
        "价保",
        "保价",
        r"\bcompensat\w+",
    ),
    "apology": ("道歉", "赔礼", r"\bapolog\w+"),
    "explanation": (
        "给说法",
        "讨说法",
        "给个说法",
        "讨个说法",
        "书面说明",
        "书面答复",
        "书面回复",
        "检测报告",
        "合理解释",
        "给个解释",
        r"\bexplanation\b",
        r"\bwritten (?:response|answer)\b",
    ),
    "honor_promise": (
        "兑现承诺",
        "兑现",
        "按合同",
        "履行合同",
        "补发赠品",
        r"\bhonou?r\b",
        r"\bkeep (?:their|your) promise\b",
    ),
    "investigation": (
        "彻查",
        "追责",
        "查明原因",
        "查清",
        "调查清楚",
        r"\binvestigat\w+",
    ),
    "restore_feature": (
        "恢复功能",
        "恢复.{0,6}功能",
        "把功能还",
        "回滚",
        r"\brestore\w*",
    ),
    "extended_warranty": ("延保", "延长质保", "延长保修", r"\bextended warranty\b"),
}

# Demand words that are also ordinary service words ("预约维修", "交车"): they
# count as a demand only next to a request marker or an unmet-fulfilment marker.
WEAK_DEMANDS: dict[str, tuple[str, ...]] = {
    "refund": ("退款", "退费", r"\brefund\w*"),
    "repair": (
        "维修",
        "修好",
        "彻底修",
        "根治",
        "上门检测",
        "检测",
        "解决问题",
        "解决",
        "处理",
        r"\bfix\w*",
        r"\brepair\w*",
    ),
    "replace_part": (
        "更换",
        "换件",
        "换电池",
        "换电池包",
        "换总成",
        "换屏",
        "换新件",
        "换个",
        r"\breplace\w*",
    ),
    "recall": ("召回", "排查同批次", "全面排查", r"\brecall\w*"),
    "explanation": ("答复", "解释", "明确时间", "给个时间", "回复"),
    "honor_promise": ("交车", "赠品", "权益", "承诺"),
    "return_car": ("退换",),
}

# Markers that turn a weak demand word into a demand.
REQUEST_MARKERS = (
    "要求",
    "希望",
    "请求",
    "请",
    "必须",
    "诉求",
    "申请",
    "讨",
    "给我",
    "给个",
    "还我",
    "我要",
    "只要",
    "坚持",
    "只接受",
    "需要",
    "应当",
    "尽快",
    "立即",
    "马上",
    "限期",
    "强烈",
    "投诉要求",
    "不给",
    "拒绝",
    "不予",
    "迟迟",
    "一直不",
    "至今未",
    "至今没",
    "还没",
    "不肯",
    "不退",
    r"\bdemand\w*",
    r"\bwant\w*",
    r"\basking (?:for|them)\b",
    r"\brequest\w*",
    r"\bexpect\w*",
    r"\bshould\b",
    r"\brefus\w+",
)

# Sentiment, sarcasm and negation share one table so that the longest phrase at
# a position wins: "不满意" is negative, "不是不满意" positive. Phrases are
# separated by whitespace; English phrases use \s between words.
POLARITY: dict[str, tuple[str, ...]] = {
    "negative": _phrases(
        r"""
        失望 大失所望 太失望 后悔 后悔死 悔青 早知道 垃圾 垃圾车 破车 烂车 太烂 真烂
        差劲 太差 很差 真差 好差 极差 坑人 被坑 太坑 坑爹 坑货 踩坑 避坑 恶心 气死 气炸
        气得 气人 生气 愤怒 无语 服了 服气 心寒 寒心 心凉 崩溃 心态崩 离谱 离大谱 糟糕
        糟心 闹心 揪心 堵心 窝心 添堵 膈应 受不了 忍不了 忍无可忍 不靠谱 不行 拉胯 拉垮
        辣鸡 骗子 忽悠 敷衍 糊弄 应付 打太极 扯皮 推诿 推卸 甩锅 踢皮球 没人理 没人管
        没人回 没人接 打不通 不理人 爱答不理 冷漠 傲慢 不回复 没下文 石沉大海 杳无音信
        不了了之 不满意 不满 不推荐 不值 不值得 不专业 不舒服 不好 不负责 没担当 难受
        难用 郁闷 吐槽 槽点 无力吐槽 差评 劝退 别买 慎买 千万别 千万不要 一言难尽 心累
        恼火 火大 窝火 憋屈 憋气 扯淡 奇葩 不合理 凭什么 什么玩意 啥玩意 什么鬼 割韭菜
        韭菜 冤大头 智商税 要命 烦死 太慢 心疼 肉疼 血亏 亏大了 亏死 醉了 呵呵
        不投诉不代表 有意见 想哭 欲哭无泪 绝望 无奈 无助 心塞 上当 欺负 欺人太甚
        霸王条款 没耐心 配不上 不配 吓出 吓死 吓人 后怕 白花 折腾 折磨 遭罪 受罪 煎熬
        倒霉 过分 太过分 恶劣 无良 黑心 奸商 丢人 丢脸 打脸 翻车 不及格 鸡肋 反人类 画饼
        画大饼 套路 被套路 出尔反尔 说话不算 不算数 一拖再拖 遥遥无期 干等 白等 苦等
        傻等 提心吊胆 担惊受怕 不敢开 不放心 头疼 头大 太麻烦 麻烦死 费劲 委屈 冤枉 痛心
        伤心 失落 不会再买 再也不买 再也不会 最后一次 不敢再 谨慎购买 掉坑 骂人 想骂
        开什么玩笑 有没有搞错 当我傻 欺骗 难搞 危险 太危险 安全隐患 竟然 隐瞒 翻新车
        事故车 拒绝三包 尴尬 不爽 不开心 闹剧 笑话
        不高兴 不喜欢 不太满意 不划算 不好用 不省心 不安心 没那么好
        \[(?:怒|抓狂|吐|衰|泪|伤心|生病|失望|哼|鄙视|怒骂|晕|悲伤|委屈|可怜|汗|弱|崩溃|裂开)\]
        \bdisappoint\w* \bterrible\b \bawful\b \bworst\b \bhorrible\b \bfrustrat\w*
        \bangry\b \bannoy\w* \bupset\b \bunhappy\b \bridiculous\b \bunacceptable\b
        \bregret\w* \buseless\b \bnightmare\b \bscam\w* \bfed\sup\b \bsick\sof\b
        \btired\sof\b \bnever\sagain\b \bnot\shappy\b \bnot\simpressed\b \bjoke\b
        \bsucks?\b \bpathetic\b \bshame\w*\b \bdisgust\w* \blousy\b \brip-?off\b
        \bripped\soff\b \blemon\b \bignored\b \bghosted\b \bwaste\b \bpissed\b
        """
    ),
    "fault": _phrases(
        r"""
        故障 毛病 问题 缺陷 隐患 坏了 坏掉 又坏 失灵 不灵 不工作 不亮 不制冷 不制热
        渗油 烧机油 机油增多 机油乳化 拉缸 爆震 怠速不稳 熄火 失速 启动困难 亏电 打滑 跳挡
        拖挡 锈蚀 裂纹 氧化 失效 偏磨 刹车软 刹车偏软 刹车偏硬 未弹开 爆裂 噪音大 胎噪大
        风噪大 损坏 破损 下沉 方向盘变重 动力不足 加速无力 油耗高 油耗偏高 大灯发白
        不出风 漏风 漏水 漏油 漏电 进水 起雾 发霉 异响 嗡嗡响 咔咔响 吱吱响 咯吱 哒哒响
        共振 抖动 发抖 顿挫 跑偏 吃胎 鼓包 脱落 松动 断裂 变形 褪色 起泡 色差 缝隙 刮擦
        生锈 锈迹 掉漆 开裂 划痕 发烫 过热 耗电 掉电 掉电快 续航缩水 续航打折 虚标 缩水
        充电慢 充不满 充电失败 充不进 充不上 跳枪 断连 连不上 信号差 定位漂移 死机 卡顿
        卡死 卡住 卡了 又卡 很卡 太卡 好卡 巨卡 卡成 重启 自动重启 黑屏 白屏 花屏 闪屏
        蓝屏 无响应 没反应 闪退 报错 打不开 关不上 锁不上 升级失败 阉割 减配 偷工减料
        取消了 砍掉 异味 味道大 刺鼻 延期 推迟 跳票 交付延迟 提不到车 等车 没交车
        还没交付 缺件 等件 没货 等不到 没到 涨价 多收 乱收费 额外收费 加价 捆绑 降价
        背刺 刚买就降 贬值 保值差 太贵 收费高 等了 等得 排了 排队 趴窝 无法启动 进了三次
        返厂 钣喷 没修好 修不好 态度差 态度恶劣 \bbroken\b \bissues?\b \bproblems?\b
        \bdefect\w* \bfail\w* \bglitch\w* \bcrash\w* \bdelay\w* \bfroze\b \bfreez\w*
        \bnoise\b \bleak\w* \bdrain\w* \bstopped\sworking\b
        """
    ),
    "frequency": _phrases(
        r"""
        又 又双叒 三天两头 隔三差五 时不时 动不动 总是 老是 经常 一直 反复 频繁 屡次
        多次 好几次 几次 每次 每天 天天 三番五次 一次又一次 再次 没完没了 依然 仍然 依旧
        至今 到现在 到今天 都.{0,2}(?:天|周|个月)了 快.{0,2}(?:周|个月)了 半个月了
        第[二三四五六七八九十\d]+次 [两三四五六七八九十\d]+次 \bagain\b \bkeeps?\b
        \bstill\b \bevery\stime\b \brepeatedly\b
        """
    ),
    "dissatisfied_question": _phrases(
        r"""
        正常吗 合理吗 这合理吗 算不算 是不是虚假 有没有人管 有人管吗 谁来管 谁管 谁负责
        为什么 为啥 凭啥 怎么回事 咋回事 什么情况 啥情况 就这 说好的呢 人呢 好意思
        还有没有 难道 要等到什么时候 还要等多久 什么时候能 有没有人遇到 有人遇到 只有我
        是通病 通病 还能不能 能不能争点气 到底 究竟 \bis\sthis\snormal\b \bwhy\b
        \banyone\selse\b
        """
    ),
    "positive": _phrases(
        r"""
        满意 很满意 非常满意 满分 五星 点赞 大赞 好评 推荐 强烈推荐 安利 种草 给力 靠谱
        贴心 暖心 感动 热心 耐心 细心 负责 专业 高效 周到 到位 服务好 态度好 及时 迅速
        第一时间 舒服 舒适 舒心 安静 静谧 平顺 顺滑 丝滑 流畅 灵敏 好开 好停 好用 好看
        漂亮 颜值高 质感 省心 省钱 省电 能耗低 电耗低 喜欢 爱了 爱上 值得 值了 超值
        物超所值 性价比高 划算 不亏 没白买 选对了 买对了 没选错 不后悔 惊喜 惊艳
        超出预期 超预期 不错 挺好 很好 真好 蛮好 完美 优秀 出色 超棒 很棒 真棒 无可挑剔
        挑不出毛病 没毛病 没问题 真香 很稳 扎实 良心 厚道 诚意 用心 感谢 谢谢 开心 高兴
        放心 安心 值这个价 不差 好多了 改善了 进步 充电快 加速快 隔音好 续航扎实
        续航真实 续航靠谱 满足 享受 惬意 舒坦 顺利 准时 按时 提前交付 守时 出乎意料
        值回票价 赞赏 表扬 辛苦了 夸一下 夸夸 必须夸 宝藏 太香 可以可以 稳稳的 稳定
        零故障 没坏过 送了 还送 赠送 免费 主动联系 上门 yyds 绝绝子
        (?:没|没有|无|零)(?:出过|过|什么|任何)?(?:问题|毛病|故障|异响)
        \bpleasantly\ssurprised\b \bno\sissues\b \bzero\sissues\b \bflawless\b \bsolid\b \benjoy\w*
        \[(?:赞|心|抱抱|得意|哈哈|爱你|good|鼓掌|太开心|耶|笑哈哈|给力|棒棒哒)\]
        \blove\w*\b \bgreat\b \bawesome\b \bamazing\b \bexcellent\b \bperfect\b
        \bimpress\w* \bhappy\b \bsatisfied\b \bsmooth\b \bquiet\b \bcomfortable\b
        \breliable\b \brecommend\w* \bworth\sit\b \bfantastic\b \bthank\w* \bkudos\b
        \bhelpful\b \bno\scomplaints\b \bwell\sdone\b
        """
    ),
    "mild_positive": _phrases(
        r"""
        还行 还可以 挺可以 可以的 还不错
        (?:服务|态度|处理|效率|这次|真|挺)可以(?![吗么?]) \bnot\sbad\b \bdecent\b
        """
    ),
    # "不是不满意", "没有不推荐的理由", "倒也不是不喜欢": a denied negative.
    "double_negation": _phrases(
        r"""
        不是不[\u4e00-\u9fff]{1,3} 没有不[\u4e00-\u9fff]{1,2}的理由
        并非不[\u4e00-\u9fff]{1,2} 不能说不[\u4e00-\u9fff]{1,2}
        """
    ),
    # "不是车不好,是服务…": the negative moves to what follows.
    "shifted_negation": _phrases(r"不是[\u4e00-\u9fff]{0,4}不(?:好|行)"),
    "sarcasm": _phrases(
        r"""
        [“"「『'][^”"」』'\s]{0,3}(?:好|贴心|靠谱|大方|尊享|高端|智能|良心|优秀|专业|给力|人性化|快|棒|省心|周到|划算|放心|服务|效率)[^”"」』'\s]{0,2}[”"」』']
        真是谢谢 谢谢你们 感谢.{0,12}让我体验 真行啊 真有你的 好一个 不愧是 可真是
        太有才 笑死 绝了 真会玩 呵呵哒 666 厉害了 佩服佩服 真是服了
        \[(?:微笑|doge|二哈|允悲|笑cry|摊手|白眼|吃瓜|阴险|费解)\] \bthanks?\sa\slot\b
        \bgreat\sjob\b \byeah\sright\b \bwow\b
        """
    ),
    "resolved": _phrases(
        r"""
        解决了 已解决 问题解决 顺利解决 修好了 已修好 到账 周到账 退了 给退了 赔了
        补偿了 处理好了 处理得 回访 圆满 给换了 换了新 搞定 结案 \bresolved\b \bfixed\b
        \brefunded\b \bgot\smy\smoney\sback\b \bsorted\b
        """
    ),
}

# Weights of the polarity codes in the negative and positive scores.
NEGATIVE_WEIGHTS = {
    "negative": 2,
    "fault": 1,
    "frequency": 1,
    "dissatisfied_question": 1,
}
POSITIVE_WEIGHTS = {"positive": 2, "mild_positive": 1, "double_negation": 2}

# Questions asking for information.
QUESTION_MARKERS = (
    "吗",
    r"\?",
    "请问",
    "求问",
    "怎么办",
    "怎么样",
    "如何",
    "有没有",
    "是不是",
    "哪个",
    "多少",
    "求推荐",
    "值得买",
    "能不能",
    r"\bhow\b",
    r"\bwhat\b",
    r"\bshould i\b",
    r"\banyone\b",
)

# Words that show the author speaks of their own car, order or visit.
FIRST_HAND = (
    "我的",
    "我家",
    "我们家",
    "俺家",
    "本人",
    "自己的",
    "我(?:刚|才|已|去|在|把|被|开|买|提|订|用|等|试|送|修|充|跑|问|找|打|要|们|爸|妈|老婆|老公)",
    "车主",
    "提车",
    "新车",
    "爱车",
    "买了",
    "订了",
    "下定",
    "定金",
    "订金",
    "试驾",
    "开了",
    "用了",
    "入手",
    "落地",
    "同款",
    "我也是",
    "\\+1",
    "送修",
    "保养",
    "我车",
    "俺",
    "咱",
    "我觉得",
    "我",
    r"\bmy\b",
    r"\bowner\b",
    r"\bi\b",
    r"\bi'(?:ve|m)\b",
    r"\bour\b",
    r"\bwe\b",
)

# Signs of an onlooker, not a customer.
BYSTANDER = (
    "听说",
    "据说",
    "网上说",
    "别人家",
    "谁知道",
    "能活几年",
    "估计",
    "吃瓜",
    "围观",
    "路人",
    "看热闹",
    "新品牌",
    "这牌子",
    "这品牌",
    "看着",
    "看起来",
    "看上去",
    "路上看到",
    "街上",
    "展厅",
    "车展上看",
)

# Ordinary service steps: a fault reported alongside one of these, with no
# other complaint word, is a service request, not a grievance.
ROUTINE_SERVICE = (
    "送修",
    "预约",
    "约了",
    "保养",
    "进店",
    "到店",
    "去店里",
    "检查一下",
    r"\bbooked\b",
    r"\bappointment\b",
)

# Third-person accounts of a customer's case (news, lawyers, KOL relays).
THIRD_PARTY = (
    "一位.{0,6}车主",
    "该车主",
    "某车主",
    "当事人",
    "车主[\u4e00-\u9fff]?(?:先生|女士)",
    "[\u4e00-\u9fff](?:先生|女士)",
    "网友",
    "粉丝投稿",
    "粉丝私信",
    "据悉",
    "爆料",
    "据.{0,8}报道",
    "记者了解到",
    "记者获悉",
    "受.{0,4}委托",
    r"\ba customer\b",
    r"\bthe owner\b",
)

# Statements by the company or official notices, and complaint statistics.
STATEMENTS = (
    "声明",
    "致歉信",
    "官方回应",
    "回应称",
    "公告",
    "通报",
    "召回公告",
    "官方表示",
    "特此",
    "敬请",
    "投诉量",
    "投诉榜",
    "投诉排行",
    "季度投诉",
    "投诉数据",
    "发布会",
    "上市",
    "新车发布",
    "限时优惠",
    "到店",
    "欢迎",
    "活动",
    "销量",
    "交付量",
    "股价",
    "财报",
    "融资",
)

# Third-party ads and spam.
SPAM = (
    "代办上牌",
    "脚垫",
    "贴膜",
    "加微",
    "加V",
    "vx",
    "私信我",
    "包过",
    "招代理",
    "厂家直销",
    "全网最低",
    "代购",
    "兼职",
    "刷单",
    "脚踏垫",
    "座套",
)

# Owners organising a group action. Organising is not yet acting, so these make
# a grievance with a stated demand, not a complaint.
GROUP_ORGANISING = (
    "拉个群",
    "拉群",
    "建群",
    "进群",
    "来群里",
    "都来群",
    "一起维权",
    "一起去",
    "组团",
    "约好",
    "联合起来",
    "一起要",
    r"\bjoin (?:us|the group)\b",
)

# Root cause words: what the grievance or complaint is about.
ROOT_CAUSES: dict[str, tuple[str, ...]] = {
    "product": (
        "车机",
        "黑屏",
        "死机",
        "卡顿",
        "续航",
        "掉电",
        "异响",
        "漏水",
        "漆面",
        "掉漆",
        "异味",
        "辅助驾驶",
        "ADAS",
        "刹车",
        "起火",
        "自燃",
        "电池",
        "空调",
        "底盘",
        "悬挂",
        "隔音",
        "胎噪",
        "风噪",
        "座椅",
        "车门",
        "雨刮",
        "大灯",
        "方向盘",
        "电机",
        "质量",
        "做工",
        "生锈",
        "充电慢",
        "充电口",
        "屏幕",
        "蓝牙",
        "导航",
        "语音",
        "OTA",
        "bug",
        "钣喷",
        "溜车",
        "车漆",
        "故障",
        r"\bbattery\b",
        r"\bscreen\b",
        r"\bbrakes?\b",
        r"\bcharging port\b",
        r"\bsoftware\b",
    ),
    "service": (
        "销售",
        "售后",
        "客服",
        "服务",
        "态度",
        "店员",
        "门店",
        "4S店",
        "技师",
        "师傅",
        "店长",
        "顾问",
        "接待",
        "没修好",
        "修不好",
        "修了",
        "多收",
        "划伤",
        "刮花",
        "翻新",
        "骗",
        "忽悠",
        "推诿",
        "敷衍",
        "不理",
        r"\bsales(?:man|person)?\b",
        r"\bstaff\b",
        r"\brude\b",
        r"\bdealer\b",
    ),
    "process": (
        "降价",
        "价保",
        "保价",
        "交付",
        "交车",
        "提车时间",
        "延期",
        "排队",
        "预约",
        "配件",
        "等件",
        "缺件",
        "三包",
        "政策",
        "条款",
        "金融",
        "贷款",
        "捆绑",
        "充电费",
        "服务费",
        "退定金",
        "定金",
        "隐私",
        "排产",
        "物流",
        "充电桩",
        "服务区",
        "保险",
        "流程",
        "规定",
        r"\bdelivery\b",
        r"\bpolicy\b",
        r"\bwarranty\b",
    ),
}

# Safety events that actually happened: customer loss 3.
SAFETY_EVENTS = (
    "自燃",
    "起火",
    "着火",
    "冒烟",
    "烧了",
    "烧毁",
    "火灾",
    "刹车失灵",
    "刹车失效",
    "刹不住",
    "刹车变硬",
    "刹车踩不下",
    "(?:刹车|制动)踏板.{0,4}(?:变硬|踩不下|踩不动|失灵)",
    "踩不下去",
    "手刹才(?:停|刹)",
    "制动失效",
    "失控",
    "断电",
    "失去动力",
    "动力中断",
    "突然没动力",
    "(?:行驶|开车|高速|路上|车速).{0,8}黑屏",
    "黑屏.{0,8}(?:看不到|看不见)车速",
    "仪表.{0,6}(?:黑屏|黑了|全黑)",
    "(?:车速|时速)(?:都|也)?(?:看不到|看不见|不显示)",
    "溜车",
    "往前溜",
    "往后溜",
    "自己溜",
    "碰撞",
    "撞了",
    "撞上",
    "追尾",
    "(?:差点|差一点|险些|几乎)(?:就)?(?:撞|蹭|追尾|出事|冲出)",
    "才没(?:撞|蹭|追尾|出事)",
    "受伤",
    "住院",
    "骨折",
    "气囊.{0,4}(?:没弹|未弹|不弹|没有弹)",
    "门锁失灵",
    "车门打不开",
    "困在车里",
    "锁在车里",
    "幽灵刹车",
    "突然刹车",
    "自动刹停",
    "急刹",
    "突然加速",
    "暴冲",
    "方向盘失灵",
    "转向失灵",
    r"\bcaught fire\b",
    r"\bon fire\b",
    r"\bsmok(?:e|ing)\b",
    r"\bbrakes? failed\b",
    r"\blost power\b",
    r"\bcrash(?:ed)?\b",
    r"\bslammed on\b",
    r"\binches from\b",
    r"\b(?:nearly|almost) (?:hit|crashed|rear-ended)\b",
    r"\binjur\w+",
    r"\bairbags? (?:didn'?t|failed)\b",
)

# Hazards reported without an event: customer loss 2.
SAFETY_HAZARDS = (
    "危险",
    "安全隐患",
    "隐患",
    "吓人",
    "后怕",
    "吓死",
    "吓出",
    "(?:辅助驾驶|ADAS|巡航|车道保持|NOA).{0,8}退出",
    "警告灯",
    "故障灯",
    "报警灯",
    "(?:系统|故障|高压|电池|胎压|电机|动力)报警",
    "报警提示",
    "雨刮.{0,8}(?:刮不|刮不干净|看不清)",
    "风险",
    r"\bdangerous\b",
    r"\bsafety (?:issue|hazard|risk)\b",
    r"\bunsafe\b",
)

# A collision while the car is in the workshop's hands is damage to the car,
# not a safety event on the road. The match stays within one clause.
WORKSHOP_COLLISION = (
    "(?:保养|维修|检修|洗车|挪车|钣喷)(?:时|的时候|期间|过程中)"
    "[^,.;!?。,;!?]{0,16}(?:撞|碰)[了上坏伤]?",
)

# Words that make a safety word hypothetical or denied.
HYPOTHETICAL = (
    "万一",
    "如果",
    "要是",
    "担心",
    "害怕",
    "怕",
    "会不会",
    "可能",
    "风险",
    "隐患",
    "没有",
    "没",
    "不会",
    "防止",
    "避免",
    "召回",
    r"\bwhat if\b",
    r"\bcould\b",
    r"\bmight\b",
)

# The car cannot be used: customer loss 2.
CAR_UNUSABLE = (
    "趴窝",
    "无法启动",
    "打不着",
    "启动不了",
    "拖车",
    "拖走",
    # "开不了口", "开不了门", "开不了几次" are not a car out of use.
    "开不了(?![口门多几])",
    "没法开",
    "不能开",
    "停在店里",
    "在店里.{0,4}(?:天|周|个月)",
    "修了.{0,3}(?:天|周|个月)",
    "(?:停|放|扣|趴)在(?:店|厂|服务中心|4S店)",
    "停驶",
    "停运",
    "没车开",
    "没车用",
    "充不进电",
    "充不上电",
    r"\bwon'?t start\b",
    r"\btowed\b",
    r"\bstranded\b",
)

# A key function out of use for a day or more ("黑屏一个礼拜了",
# "一周打不开"): customer loss 2. A count after the span ("一天三次") makes it
# a frequency, not a duration.
_DAYS = (
    "(?:[一二两三四五六七八九十几\\d]+多?(?:天|周|个?礼拜|个?星期|个月|年)"
    "|半个?(?:月|年))"
)
_BROKEN = (
    "(?:黑屏|死机|失灵|失效|坏了|坏掉|不工作|打不开|用不了|不能用|没法用|连不上"
    "|不制冷|不制热|没声音)"
)
_OUT_OF_USE = (
    "(?:没法用|不能用|用不了|打不开|没(?:导航|空调|倒车影像)|不敢(?:开|倒|用))"
)
FUNCTION_LOST = (
    _BROKEN
    + "了?(?:整整|快|都|已经|近|足足)?"
    + _DAYS
    + "(?![一二两三四五六七八九十\\d]*次)",
    _DAYS + "(?:都|了|多)?" + _OUT_OF_USE,
)

# Time lost and inconvenience: customer loss 1. Waiting for a part is
# ordinary service, not a car out of use.
TIME_LOSS = (
    "等配件",
    "等件",
    "等了",
    "排队",
    "排了",
    "跑了.{0,2}趟",
    "来回",
    "耽误",
    "请假",
    "一上午",
    "一下午",
    "半天",
    "几个小时",
    "[一二两三四五六七八九十几\\d]+个多?小时",
    "一小时",
    "好几次",
    "三天两头",
    "白跑",
    r"\bwait\w*",
    r"\bhours\b",
)

# Health concerns: customer loss 2.
HEALTH = (
    "甲醛",
    "头晕",
    "头疼",
    "过敏",
    "咳嗽",
    "刺鼻",
    "嗓子疼",
    "异味",
    r"\bfumes\b",
)

# Context that makes an amount the car price, which is not a loss.
CAR_PRICE_CONTEXT = (
    "落地",
    "裸车",
    "车价",
    "指导价",
    "售价",
    "起售",
    "买的",
    "购车",
    "全款",
    "万的车",
    "预算",
    "提车价",
    "首付",
    "贷款",
)

# Company fault anchors, highest first.
FAULT_SERIOUS = (
    "拒绝三包",
    "不给三包",
    "不执行三包",
    "拒绝履行三包",
    "三包.{0,6}(?:拒绝|不认|不给)",
    "翻新车",
    "事故车",
    "修过的车",
    "二手车当新车",
    "隐瞒",
    "瞒着",
    "瞒报",
    "欺骗",
    "欺诈",
    "骗",
    "捆绑",
    "强制购买",
    "强制贷款",
    "必须买",
    "否认.{0,6}批次",
    "拒不承认",
    "不承认",
    r"\bfraud\w*",
    r"\bcover(?:ed)? up\b",
    r"\blied\b",
)
FAULT_CLEAR = (
    "修了[两三四五六七八九十\\d]+次",
    "(?:维修|返修|送修|检修)了?[两三四五六七八九十\\d]+次",
    "[两三四五六七八九十\\d]+次(?:维修|返修|送修)",
    "修.{0,6}(?:还|仍|都|依然)(?:没|未)(?:好|修好|解决)",
    "第[二三四五六七八九十\\d]+次(?:送修|维修|返厂|进店|进厂)",
    "进了[两三四五六七八九十\\d]+次",
    "反复维修",
    "多次维修",
    "修不好",
    "没修好",
    "推诿",
    "踢皮球",
    "态度恶劣",
    "态度差",
    "骂人",
    "甩锅",
    "爱答不理",
    "不理不睬",
    "虚假宣传",
    "虚标",
    "说好的",
    "答应的",
    "承诺的",
    "没兑现",
    "违约",
    "多收",
    "乱收费",
    "加价",
    "缺陷",
    "设计问题",
    "质量问题",
    "bug",
    r"\brude\b",
    r"\bmisleading\b",
    r"\bbroken promise\b",
)
FAULT_MINOR = (
    "原因不明",
    "原因未知",
    "调查中",
    "正在调查",
    "降价",
    "没有价保",
    "交付延期",
    "延期",
    "物流",
    "偶尔",
    "偶发",
    # "慢慢" is a manner of doing something, not a slow service.
    "(?<!慢)慢(?!慢)",
)
FAULT_NONE = (
    "第三方",
    "保险公司",
    "对方全责",
    "别人撞",
    "被人撞",
    "我自己",
    "误操作",
    "操作不当",
    "不怪",
    "自己不小心",
)

# Signs of spread for public impact.
GROUP_ACTION = (
    "集体维权",
    "车主群",
    "维权群",
    "联名信",
    "联名",
    "几十位车主",
    "十几个车主",
    "十几位车主",
    "多位车主",
    "上百位",
    "一群车主",
    "一起维权",
    # A model code may stand between the count and the owners ("42位QC5车主").
    "[\\d十百几]+(?:位|名|个|多个|多位)(?:[a-z]+\\d+)?准?车主",
    # Ten or more entries filed by owners ("三百多条同类投诉").
    "(?:\\d{2,}|[一二两三四五六七八九几]?[十百千][一二两三四五六七八九十百千几]*)多?"
    "(?:条|起|单)(?:同类|类似|相同)?投诉",
    "好多人都",
    "很多车主",
    "不止我一个",
    "都投诉了",
    "同类投诉",
    r"\bmany owners\b",
)
MASS_ESCALATION = (
    "集体维权",
    "[二三四五六七八九\\d]+十(?:多)?(?:位|名|个)(?:[a-z]+\\d+)?准?车主",
    "上百位",
    "[2-9]\\d+多?(?:位|名|个)(?:[a-z]+\\d+)?准?车主",
)
MAINSTREAM_MEDIA = (
    "央视",
    "电视台",
    "新闻联播",
    "人民日报",
    "新华社",
    "3·15晚会",
    "315晚会",
    "焦点访谈",
    "主流媒体",
    "新闻报道",
    "上了新闻",
)
VERTICAL_MEDIA = (
    "懂车帝",
    "汽车之家",
    "易车",
    "车评人",
    "汽车博主",
    "垂直媒体",
    "自媒体",
    "大V",
    "博主转发",
)
TRENDING = ("热搜", "上热搜", "冲上热搜", "刷屏", r"\btrending\b", r"\bviral\b")

# Self-descriptions of the customer, with the identity score they imply.
IDENTITY: dict[str, tuple[str, ...]] = {
    "3": (
        "人大代表",
        "政协委员",
        "(?:央视|人民日报|新华社|电视台)(?:的)?(?:记者|编辑)",
        "(?:我是|本人是?|作为).{0,6}(?:官员|局长|处长)",
    ),
    "2": (
        "(?:我是|本人是?|作为)(?:一名|一个|个)?.{0,4}律师",
        "本人律师",
        "(?:我是|本人是?|作为)(?:一名|一个|个)?.{0,4}(?:记者|编辑|媒体人)",
        "律师车主",
        "车队",
        "网约车公司",
        "出租车公司",
        "驾校",
        "物流公司",
        "企业用户",
        "公司采购",
        "批量采购",
        "[\\d十几]+台(?:车|QC)",
        r"\bfleet\b",
        r"\bi'?m a lawyer\b",
    ),
    "1": (
        "增购",
        "第二台",
        "两台",
        "三台",
        "二次购买",
        "复购",
        "又买了",
        r"\bsecond (?:car|one)\b",
    ),
}

# Enterprise buyers whose cars off the road are a large loss.
FLEET = (
    "车队",
    "网约车公司",
    "出租车公司",
    "驾校",
    "物流公司",
    "[\\d十几]+台车",
    r"\bfleet\b",
)
