"""User-facing messages in zh-CN (default) and en.

Every message the kernel shows a person has a code here, so the same error reads
correctly in either language and tests can assert on codes instead of prose.
"""

from __future__ import annotations

DEFAULT_LOCALE = "zh-CN"
LOCALES = ("zh-CN", "en")

MESSAGES: dict[str, dict[str, str]] = {
    # field validation
    "required": {"zh-CN": "{label}为必填项", "en": "{label} is required"},
    "unknown_field": {"zh-CN": "未知字段“{field}”", "en": "unknown field '{field}'"},
    "readonly_field": {"zh-CN": "{label}不可修改", "en": "{label} cannot be changed"},
    "type_text": {"zh-CN": "{label}必须是文本", "en": "{label} must be text"},
    "too_long": {
        "zh-CN": "{label}最多 {max} 个字符",
        "en": "{label} must be at most {max} characters",
    },
    "too_short": {
        "zh-CN": "{label}至少 {min} 个字符",
        "en": "{label} must be at least {min} characters",
    },
    "pattern": {"zh-CN": "{label}格式不正确", "en": "{label} has the wrong format"},
    "type_integer": {"zh-CN": "{label}必须是整数", "en": "{label} must be a whole number"},
    "type_decimal": {"zh-CN": "{label}必须是数字", "en": "{label} must be a number"},
    "money_digits": {
        "zh-CN": "{label}最多两位小数（精确到分）",
        "en": "{label} may have at most two decimal places (fen)",
    },
    "float_refused": {
        "zh-CN": "{label}请以字符串或整数提交，不接受浮点数",
        "en": "{label} must be sent as a string or an integer, not a float",
    },
    "min_value": {"zh-CN": "{label}不能小于 {min}", "en": "{label} must be at least {min}"},
    "max_value": {"zh-CN": "{label}不能大于 {max}", "en": "{label} must be at most {max}"},
    "type_date": {
        "zh-CN": "{label}必须是日期（YYYY-MM-DD）",
        "en": "{label} must be a date (YYYY-MM-DD)",
    },
    "type_datetime": {
        "zh-CN": "{label}必须是带时区的时间（ISO 8601）",
        "en": "{label} must be a date and time with a time zone (ISO 8601)",
    },
    "type_boolean": {"zh-CN": "{label}必须是“是”或“否”", "en": "{label} must be true or false"},
    "choice": {
        "zh-CN": "{label}的取值“{value}”不在可选项中",
        "en": "'{value}' is not one of the choices for {label}",
    },
    "type_list": {"zh-CN": "{label}必须是列表", "en": "{label} must be a list"},
    "mobile": {
        "zh-CN": "{label}不是有效的中国大陆手机号",
        "en": "{label} is not a valid mainland China mobile number",
    },
    "email": {"zh-CN": "{label}不是有效的电子邮箱", "en": "{label} is not a valid email address"},
    "resident_id_format": {
        "zh-CN": "{label}应为 18 位（最后一位可为 X）",
        "en": "{label} must have 18 characters (the last may be X)",
    },
    "resident_id_checksum": {
        "zh-CN": "{label}校验位错误",
        "en": "{label} has a wrong check character",
    },
    "resident_id_birth": {
        "zh-CN": "{label}中的出生日期无效",
        "en": "{label} contains an invalid birth date",
    },
    "credit_code_format": {
        "zh-CN": "{label}应为 18 位，只含数字和大写字母（不含 I、O、S、V、Z）",
        "en": "{label} must have 18 characters: digits and capital letters except I, O, S, V, Z",
    },
    "credit_code_checksum": {
        "zh-CN": "{label}校验位错误",
        "en": "{label} has a wrong check character",
    },
    "region": {
        "zh-CN": "{label}不是有效的行政区划代码",
        "en": "{label} is not a valid administrative region code",
    },
    "reference": {
        "zh-CN": "{label}引用的记录不存在",
        "en": "{label} refers to a record that does not exist",
    },
    "attachment": {
        "zh-CN": "{label}必须是附件编号",
        "en": "{label} must be an attachment id",
    },
    "attachment_unknown": {
        "zh-CN": "{label}不是本记录已上传的资料",
        "en": "{label} is not a document uploaded to this record",
    },
    # documents (uploaded files)
    "document_too_large": {
        "zh-CN": "文件太大：最大 {max}",
        "en": "the file is too large: at most {max}",
    },
    "document_type": {
        "zh-CN": "只能上传 PDF、JPEG、PNG 或 WEBP 文件（按文件内容判断，不看扩展名）",
        "en": "only PDF, JPEG, PNG or WEBP files can be uploaded (judged by their content, "
        "not the file name)",
    },
    "document_file_required": {
        "zh-CN": "请选择要上传的文件",
        "en": "choose a file to upload",
    },
    "document_multipart": {
        "zh-CN": "请以 multipart/form-data 上传：先填 kind（资料类型），再附 file（文件）",
        "en": "upload as multipart/form-data with the fields kind and file",
    },
    "document_unreadable": {
        "zh-CN": "文件无法读取：存储的文件已损坏、被篡改或密钥已销毁，已记录",
        "en": "the file cannot be read: the stored file is damaged, was tampered with, or its "
        "key was destroyed; this has been logged",
    },
    # records and requests
    "validation_failed": {"zh-CN": "提交的数据有误", "en": "the submitted data is invalid"},
    "not_found": {"zh-CN": "记录不存在", "en": "record not found"},
    "tenant_not_found": {"zh-CN": "租户“{slug}”不存在", "en": "tenant '{slug}' does not exist"},
    "tenant_slug": {
        "zh-CN": "租户标识“{slug}”无效：只能用小写字母、数字和连字符，以字母开头",
        "en": "tenant slug '{slug}' is invalid: lowercase letters, digits and hyphens, "
        "starting with a letter",
    },
    "tenant_exists": {"zh-CN": "租户“{slug}”已存在", "en": "tenant '{slug}' already exists"},
    "tenant_inactive": {"zh-CN": "租户“{slug}”已停用", "en": "tenant '{slug}' is not active"},
    "tenant_scope": {
        "zh-CN": "该记录不属于当前租户，写入被拒绝",
        "en": "the record does not belong to the current tenant; the write was refused",
    },
    "bad_filter": {"zh-CN": "无法按“{field}”筛选", "en": "cannot filter by '{field}'"},
    "bad_sort": {"zh-CN": "无法按“{field}”排序", "en": "cannot sort by '{field}'"},
    "bad_page": {"zh-CN": "分页参数无效", "en": "invalid page parameters"},
    "body_object": {
        "zh-CN": "请求体必须是 JSON 对象",
        "en": "the request body must be a JSON object",
    },
    "version_conflict": {
        "zh-CN": "记录已被他人修改，请刷新后重试",
        "en": "the record was changed by someone else; reload and try again",
    },
    "conflict": {"zh-CN": "操作冲突", "en": "conflict"},
    "forbidden": {"zh-CN": "没有权限", "en": "not allowed"},
    "password_length": {
        "zh-CN": "密码长度应为 8 到 128 个字符",
        "en": "a password must have 8 to 128 characters",
    },
    "bad_username": {
        "zh-CN": "用户名应为 2 到 63 个字母、数字或 _ . @ -",
        "en": "a username has 2 to 63 letters, digits or _ . @ -",
    },
    "bad_display_name": {
        "zh-CN": "显示名称应为 1 到 100 个字符",
        "en": "a display name has 1 to 100 characters",
    },
    "password_common": {
        "zh-CN": "这个密码太常见，很容易被猜到，请换一个",
        "en": "this password is too common and easy to guess; choose another",
    },
    "bad_current_password": {"zh-CN": "当前密码不正确", "en": "the current password is wrong"},
    "account_locked": {
        "zh-CN": "登录失败次数过多，账户已临时锁定，请 15 分钟后再试",
        "en": "too many failed sign-ins: the account is locked for 15 minutes",
    },
    "mfa_use_web": {
        "zh-CN": "该账户已启用双因素认证，请通过网页登录或使用集成令牌",
        "en": "this account uses two-factor authentication: sign in on the web or use an "
        "integration token",
    },
    "mfa_already_enabled": {
        "zh-CN": "双因素认证已启用；如需更换设备请联系管理员重置",
        "en": "two-factor authentication is already on; ask an administrator to reset it",
    },
    "mfa_bad_code": {"zh-CN": "验证码不正确或已使用", "en": "the code is wrong or already used"},
    "token_days": {
        "zh-CN": "有效期应为 1 到 {max} 天",
        "en": "a token lasts 1 to {max} days",
    },
    "token_name": {"zh-CN": "请填写令牌名称（最多 100 字）", "en": "name the token (up to 100 characters)"},
    "token_scopes": {
        "zh-CN": "令牌权限不能超出你自己的权限：{scopes}",
        "en": "a token cannot have permissions you do not have: {scopes}",
    },
    "forbidden_action": {
        "zh-CN": "没有权限执行此操作（{permission}）",
        "en": "you are not allowed to do this ({permission})",
    },
    "fields_forbidden": {
        "zh-CN": "你的角色不能修改其中的字段，未保存任何内容",
        "en": "your role may not change some of these fields; nothing was saved",
    },
    "field_not_writable": {
        "zh-CN": "你的角色不能修改{label}",
        "en": "your role may not change {label}",
    },
    "field_hidden": {
        "zh-CN": "你的角色不能查看或使用{label}",
        "en": "your role may not see or use {label}",
    },
    "rate_limited": {
        "zh-CN": "请求过于频繁，请稍后再试",
        "en": "too many requests; please try again later",
    },
    "bad_code": {
        "zh-CN": "编码只能包含字母、数字、_ 和 -（最多 40 个）",
        "en": "a code has letters, digits, _ and - only (up to 40)",
    },
    "bad_scope": {
        "zh-CN": "数据范围“{scope}”无效（own、branch、all）",
        "en": "scope '{scope}' is invalid (own, branch, all)",
    },
    "bad_policy": {
        "zh-CN": "字段权限“{policy}”无效（hidden、masked、read、write）",
        "en": "field policy '{policy}' is invalid (hidden, masked, read, write)",
    },
    "unknown_permissions": {
        "zh-CN": "未知权限：{permissions}",
        "en": "unknown permissions: {permissions}",
    },
    "unknown_role": {"zh-CN": "角色“{role}”不存在", "en": "role '{role}' does not exist"},
    "unknown_org_unit": {
        "zh-CN": "机构“{unit}”不存在", "en": "organisation unit '{unit}' does not exist",
    },
    "org_unit_exists": {
        "zh-CN": "机构编码“{unit}”已存在", "en": "organisation unit '{unit}' already exists",
    },
    "unknown_field_of": {
        "zh-CN": "{entity} 没有字段“{field}”", "en": "{entity} has no field '{field}'",
    },
    "unknown_pack": {"zh-CN": "模板包“{pack}”不存在", "en": "pack '{pack}' does not exist"},
    "bad_status": {
        "zh-CN": "状态“{status}”无效（active、suspended）",
        "en": "status '{status}' is invalid (active, suspended)",
    },
    "grant_beyond_own": {
        "zh-CN": "不能授予或管理超出你自己权限的角色或用户",
        "en": "you cannot grant or manage roles or users with more rights than your own",
    },
    "self_change": {
        "zh-CN": "不能修改自己的角色、机构或状态，请联系其他管理员",
        "en": "you cannot change your own roles, unit or status; ask another administrator",
    },
    "shred_confirm": {
        "zh-CN": "请输入租户标识“{slug}”确认销毁密钥（数据将永久无法读取）",
        "en": "type the tenant slug '{slug}' to confirm: the data becomes unreadable for good",
    },
    "user_exists": {"zh-CN": "用户“{username}”已存在", "en": "user '{username}' already exists"},
    "bad_if_match": {
        "zh-CN": "If-Match 应为记录的版本号",
        "en": "If-Match must be the record's version number",
    },
    "bad_value": {
        "zh-CN": "提交的值超出允许的范围或长度",
        "en": "a submitted value is out of the allowed range or length",
    },
    "bad_request": {"zh-CN": "请求格式不正确", "en": "the request is malformed"},
    "internal": {
        "zh-CN": "服务器内部错误，已记录，请稍后重试",
        "en": "internal error; it has been logged, please try again later",
    },
    "unauthenticated": {"zh-CN": "请先登录", "en": "please sign in"},
    "bad_credentials": {
        "zh-CN": "用户名或密码错误",
        "en": "wrong username or password",
    },
    "custom_field_exists": {
        "zh-CN": "字段“{field}”已存在",
        "en": "field '{field}' already exists",
    },
    "custom_field_key": {
        "zh-CN": "字段标识只能包含小写字母、数字和下划线，且以字母开头",
        "en": "a field key may contain only lowercase letters, digits and underscores, "
        "starting with a letter",
    },
    "unknown_field_type": {
        "zh-CN": "未知的字段类型“{type}”",
        "en": "unknown field type '{type}'",
    },
    "bad_field_spec": {
        "zh-CN": "字段定义有误：{detail}",
        "en": "the field definition is invalid: {detail}",
    },
    "bad_sensitivity": {
        "zh-CN": "敏感级别“{value}”无效（可选 public、personal、secret）",
        "en": "sensitivity '{value}' is invalid (public, personal or secret)",
    },
    "unknown_entity": {"zh-CN": "未知的业务对象“{entity}”", "en": "unknown entity '{entity}'"},
    "plugin_disabled": {
        "zh-CN": "插件“{plugin}”未对该租户启用",
        "en": "plugin '{plugin}' is not enabled for this tenant",
    },
    "unknown_plugin": {"zh-CN": "未知的插件“{plugin}”", "en": "unknown plugin '{plugin}'"},
    # webhooks and background jobs
    "webhook_url": {
        "zh-CN": "请填写以 http:// 或 https:// 开头的完整地址（最多 500 个字符，不含用户名和密码）",
        "en": "enter a full http:// or https:// address (up to 500 characters, without a "
        "user name or password)",
    },
    "webhook_private_address": {
        "zh-CN": "地址“{host}”指向本机、内网或保留地址，云服务（SaaS）模式下不允许推送到这些地址",
        "en": "'{host}' is a loopback, private, link-local or reserved address, which the "
        "saas profile does not deliver to",
    },
    "webhook_unresolved": {
        "zh-CN": "无法解析主机名“{host}”", "en": "the host name '{host}' does not resolve",
    },
    "webhook_events": {
        "zh-CN": "请至少选择一个事件类型（最多 50 个）",
        "en": "choose at least one event type (up to 50)",
    },
    "webhook_event_name": {
        "zh-CN": "事件类型“{event}”无效：应为以点分隔的小写英文，如 customer.created、customer.*，或 *",
        "en": "event type '{event}' is invalid: lowercase words separated by dots, such as "
        "customer.created or customer.*, or *",
    },
    "webhook_description": {
        "zh-CN": "说明最多 200 个字符", "en": "the description has at most 200 characters",
    },
    "job_not_dead": {
        "zh-CN": "只有失败的作业或事件才能重试", "en": "only a dead job or event can be retried",
    },
    # Idempotency-Key (core.idempotency)
    "idempotency_key_missing": {
        "zh-CN": "此接口须带请求头 Idempotency-Key：每笔业务一个唯一值（1–255 个可见 ASCII 字符），"
                 "重试时使用同一个值",
        "en": "this endpoint requires the Idempotency-Key header: one unique value per "
              "operation (1–255 visible ASCII characters), the same value when retrying",
    },
    "idempotency_key_invalid": {
        "zh-CN": "请求头 Idempotency-Key 无效：应为 1–255 个可见 ASCII 字符（不含空格）",
        "en": "the Idempotency-Key header is invalid: it must be 1–255 visible ASCII "
              "characters (no spaces)",
    },
    "idempotency_key_reused": {
        "zh-CN": "Idempotency-Key“{key}”已用于另一个内容不同的请求；新的业务请使用新的键",
        "en": "Idempotency-Key '{key}' was already used for a different request; use a new "
              "key for a new operation",
    },
    "idempotency_in_progress": {
        "zh-CN": "使用 Idempotency-Key“{key}”的请求仍在处理中，请稍后用同一个键重试",
        "en": "a request with Idempotency-Key '{key}' is still being processed; retry later "
              "with the same key",
    },
}


def normalise_locale(locale: str | None) -> str:
    """Map 'zh', 'zh_CN', 'en-US' and friends onto a supported locale."""
    if not locale:
        return DEFAULT_LOCALE
    low = locale.replace("_", "-").lower()
    if low.startswith("en"):
        return "en"
    return DEFAULT_LOCALE


def register_messages(messages: dict[str, dict[str, str]]) -> None:
    """Add a plugin's error messages (every code in zh-CN and en); a code the kernel or
    another plugin already uses with other texts is a programming error."""
    for code, texts in messages.items():
        if set(texts) != {"zh-CN", "en"}:
            raise ValueError(f"message {code} needs zh-CN and en texts")
        if code in MESSAGES and MESSAGES[code] != texts:
            raise ValueError(f"message code {code} is already used")
        MESSAGES[code] = texts


def t(code: str, locale: str | None = None, **params: object) -> str:
    """Render message `code` in `locale`; unknown codes render as the code itself."""
    texts = MESSAGES.get(code)
    if texts is None:
        return code
    template = texts[normalise_locale(locale)]
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template


def pick_locale(accept_language: str | None, default: str = DEFAULT_LOCALE) -> str:
    """Choose zh-CN or en from an Accept-Language header (first supported wins)."""
    if not accept_language:
        return normalise_locale(default)
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip()
        if tag.lower().startswith(("zh", "en")):
            return normalise_locale(tag)
    return normalise_locale(default)
