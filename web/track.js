/* track.js — the citizen's tracking page: Arabic first, English one click
 * away. The request number and the national ID go in a POST body to
 * /v1/track, never in a URL; the answer is shown in words, with times in
 * Riyadh time. */
'use strict';

const TEXT = {
  ar: {
    title: 'تتبع طلب البطاقة',
    lead: 'أدخل رقم الطلب ورقم الهوية الوطنية لصاحب الطلب لمعرفة حالة البطاقة.',
    request_no: 'رقم الطلب',
    national_id: 'رقم الهوية الوطنية أو الإقامة',
    submit: 'تتبع الطلب',
    busy: 'جارٍ البحث…',
    request: 'الطلب',
    updated: 'آخر تحديث',
    window: 'موعد التسليم المتوقع',
    method: 'طريقة التسليم',
    attempts: 'محاولات التوصيل',
    address: 'العنوان',
    branch: 'فرع الاستلام',
    city: 'المدينة',
    collect_by: 'آخر يوم للاستلام',
    map: 'عرض الفرع على الخريطة',
    bring_id: 'أحضر معك ما يثبت هويتك عند الاستلام.',
    timeline: 'مراحل الطلب',
    tz: 'الأوقات بتوقيت الرياض.',
    footer: 'لا يُطلب منك أي رمز أو كلمة مرور هنا. لا تشارك رقم هويتك مع أحد.',
    kind_national_id: 'بطاقة الهوية الوطنية',
    kind_family_record: 'سجل الأسرة',
    method_home: 'توصيل إلى العنوان الوطني',
    method_branch: 'الاستلام من الفرع',
    between: (a, b) => `بين ${a} و${b}`,
    attempts_n: (n) => n === 0 ? 'لم تبدأ بعد' : n === 1 ? 'محاولة واحدة' : n === 2 ? 'محاولتان' : `${n} محاولات`,
    not_found: 'لم نجد طلبًا بهذا الرقم ورقم الهوية هذا. تأكد من الرقمين وحاول مرة أخرى.',
    wait: (m) => `محاولات كثيرة غير صحيحة. يرجى الانتظار ${minutesAr(m)} ثم المحاولة مرة أخرى.`,
    bad_request_no: 'رقم الطلب من 1 إلى 32 حرفًا: حروف إنجليزية كبيرة وأرقام والشرطة (-).',
    bad_national_id: 'رقم الهوية 10 أرقام يبدأ بـ 1 للمواطن أو 2 للمقيم.',
    offline: 'تعذر الاتصال بالخدمة. تحقق من اتصالك وحاول مرة أخرى.',
    server: 'الخدمة غير متاحة حاليًا. حاول مرة أخرى بعد قليل.',
    other_lang: 'English',
  },
  en: {
    title: 'Track your card request',
    lead: "Enter the request number and the holder's national ID to see where the card is.",
    request_no: 'Request number',
    national_id: 'National ID or Iqama number',
    submit: 'Track',
    busy: 'Looking it up…',
    request: 'Request',
    updated: 'Last update',
    window: 'Expected delivery',
    method: 'Delivery',
    attempts: 'Delivery attempts',
    address: 'Address',
    branch: 'Collection branch',
    city: 'City',
    collect_by: 'Last day to collect',
    map: 'Show the branch on a map',
    bring_id: 'Bring proof of your identity when you collect it.',
    timeline: 'Progress',
    tz: 'Times are Riyadh time.',
    footer: 'You are never asked for a code or a password here. Do not share your ID number with anyone.',
    kind_national_id: 'National ID card',
    kind_family_record: 'Family record',
    method_home: 'Delivery to your national address',
    method_branch: 'Collection at a branch',
    between: (a, b) => `between ${a} and ${b}`,
    attempts_n: (n) => n === 0 ? 'not started yet' : n === 1 ? '1 attempt' : `${n} attempts`,
    not_found: 'No request matches this request number and ID number. Check both and try again.',
    wait: (m) => `Too many tries that did not match. Please wait ${m} minute${m === 1 ? '' : 's'} and try again.`,
    bad_request_no: 'The request number has 1 to 32 capital letters, digits and dashes (-).',
    bad_national_id: 'The ID number has 10 digits and starts with 1 (citizen) or 2 (resident).',
    offline: 'The service could not be reached. Check your connection and try again.',
    server: 'The service is not available right now. Please try again shortly.',
    other_lang: 'العربية',
  },
};

function minutesAr(m) {
  if (m === 1) return 'دقيقة واحدة';
  if (m === 2) return 'دقيقتين';
  if (m >= 3 && m <= 10) return `${m} دقائق`;
  return `${m} دقيقة`;
}

let lang = 'ar';
let last = null;       /* the last answer shown, re-drawn when the language changes */
let lastMessage = null; /* [key, arg] of the message shown */

const $ = (id) => document.getElementById(id);
const t = (key) => TEXT[lang][key];

/* Dates and times in Riyadh time, Gregorian calendar, Latin digits. */
function locale() {
  return lang === 'ar' ? 'ar-SA-u-ca-gregory-nu-latn' : 'en-GB';
}
function formatTime(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return new Intl.DateTimeFormat(locale(), {
    timeZone: 'Asia/Riyadh', weekday: 'short', day: 'numeric', month: 'long',
    year: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false,
  }).format(d);
}
function formatDate(ymd) {
  const d = new Date(ymd + 'T12:00:00Z');
  if (isNaN(d)) return ymd;
  return new Intl.DateTimeFormat(locale(), {
    timeZone: 'UTC', weekday: 'long', day: 'numeric', month: 'long', year: 'numeric',
  }).format(d);
}

/* Arabic-Indic and Persian digits typed on an Arabic keyboard count as digits. */
function latinDigits(s) {
  return s.replace(/[\u0660-\u0669]/g, (c) => String(c.charCodeAt(0) - 0x0660))
          .replace(/[\u06f0-\u06f9]/g, (c) => String(c.charCodeAt(0) - 0x06f0));
}

function setLanguage(next) {
  lang = next;
  document.documentElement.lang = lang;
  document.documentElement.dir = lang === 'ar' ? 'rtl' : 'ltr';
  document.title = t('title');
  for (const el of document.querySelectorAll('[data-t]')) {
    const v = t(el.dataset.t);
    if (typeof v === 'string') el.textContent = v;
  }
  const button = $('lang');
  button.textContent = t('other_lang');
  button.lang = lang === 'ar' ? 'en' : 'ar';
  if (last) show(last);
  if (lastMessage) message(lastMessage[0], lastMessage[1]);
}

function message(key, arg) {
  const box = $('message');
  if (!key) {
    lastMessage = null;
    box.hidden = true;
    box.textContent = '';
    box.dataset.kind = '';
    return;
  }
  lastMessage = [key, arg];
  const v = t(key);
  box.textContent = typeof v === 'function' ? v(arg) : v;
  box.dataset.kind = key;
  box.hidden = false;
}

function show(r) {
  last = r;
  $('r-no').textContent = r.request_no;
  $('r-kind').textContent = t('kind_' + r.kind) || r.kind;
  $('r-status').textContent = (r.status_label && r.status_label[lang]) || r.status;
  $('r-status').dataset.status = r.status;
  $('r-updated').textContent = formatTime(r.updated_at);
  const w = r.estimated_delivery || {};
  $('r-window').textContent = w.earliest === w.latest ? formatDate(w.latest)
    : t('between')(formatDate(w.earliest), formatDate(w.latest));
  const d = r.delivery || {};
  $('r-method').textContent = t('method_' + d.method) || d.method;
  $('r-attempts').textContent = t('attempts_n')(d.attempts || 0);
  $('r-address').textContent = d.address || '';
  $('r-address-row').hidden = !d.address || d.method === 'branch';

  const b = d.branch;
  $('branch').hidden = !b;
  if (b) {
    $('b-name-ar').textContent = b.name.ar;
    $('b-name-en').textContent = b.name.en;
    $('b-city').textContent = b.city;
    $('b-collect-row').hidden = !d.collect_by;
    $('b-collect').textContent = d.collect_by ? formatDate(d.collect_by) : '';
    const lat = Number(b.lat).toFixed(6), lon = Number(b.lon).toFixed(6);
    $('b-map').href = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=17/${lat}/${lon}`;
  }

  const list = $('timeline');
  list.textContent = '';
  for (const step of r.timeline || []) {
    const li = document.createElement('li');
    li.dataset.status = step.status;
    const what = document.createElement('span');
    what.className = 'what';
    what.textContent = (step.label && step.label[lang]) || step.status;
    const when = document.createElement('time');
    when.dateTime = step.at;
    when.textContent = formatTime(step.at);
    li.append(what, when);
    list.append(li);
  }
  $('result').hidden = false;
}

async function track(ev) {
  ev.preventDefault();
  const no = latinDigits($('request_no').value).trim().toUpperCase();
  const nid = latinDigits($('national_id').value).replace(/\s+/g, '');
  $('request_no').value = no;
  $('national_id').value = nid;
  if (!/^[A-Z0-9-]{1,32}$/.test(no)) return message('bad_request_no');
  if (!/^[12][0-9]{9}$/.test(nid)) return message('bad_national_id');
  message(null);
  const submit = $('submit');
  submit.disabled = true;
  submit.textContent = t('busy');
  try {
    const res = await fetch('/v1/track', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
      body: JSON.stringify({ request_no: no, national_id: nid }),
      credentials: 'omit',
      cache: 'no-store',
    });
    if (res.ok) {
      show(await res.json());
      return;
    }
    last = null;
    $('result').hidden = true;
    if (res.status === 404) {
      message('not_found');
    } else if (res.status === 429) {
      const secs = parseInt(res.headers.get('Retry-After') || '60', 10);
      message('wait', Math.max(1, Math.ceil((isNaN(secs) ? 60 : secs) / 60)));
    } else if (res.status === 422) {
      const body = await res.json().catch(() => ({}));
      const fields = (body.errors || []).map((e) => e.field);
      message(fields.includes('request_no') ? 'bad_request_no' : 'bad_national_id');
    } else {
      message('server');
    }
  } catch (e) {
    message('offline');
  } finally {
    submit.disabled = false;
    submit.textContent = t('submit');
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('form').addEventListener('submit', track);
  $('lang').addEventListener('click', () => setLanguage(lang === 'ar' ? 'en' : 'ar'));
  const wanted = new URLSearchParams(location.search).get('lang');
  if (wanted === 'en') setLanguage('en');
});
