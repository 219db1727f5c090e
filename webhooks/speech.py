"""Everything the hotline says on the phone, per language, and the voice that says it.

A caller hears each line in their own language where we have it, spoken by Twilio's voice for
that language (`<Say language="fr-FR">`); a language without a translation here is spoken in
English rather than left silent. Staff prompts are in the hotline's default language.
"""

from __future__ import annotations

# Twilio <Say> language attribute for each hotline language code we can speak.
SAY_LANGUAGE = {
    "en": "en-GB",
    "fr": "fr-FR",
    "es": "es-ES",
    "ru": "ru-RU",
    "ar": "arb",
    "pt": "pt-PT",
    "tr": "tr-TR",
    "de": "de-DE",
    "it": "it-IT",
    "nl": "nl-NL",
    "pl": "pl-PL",
    "uk": "uk-UA",
}

# "For <language>, press N", spoken in that language.
MENU_OPTION = {
    "en": "For English, press {digit}.",
    "fr": "Pour le français, appuyez sur {digit}.",
    "es": "Para español, pulse {digit}.",
    "ru": "Для русского языка нажмите {digit}.",
    "ar": "للعربية، اضغط {digit}.",
    "pt": "Para português, prima {digit}.",
    "tr": "Türkçe için {digit} tuşuna basın.",
    "de": "Für Deutsch drücken Sie die {digit}.",
    "it": "Per l'italiano, premi {digit}.",
}

STAY_ON_LINE = {
    "en": "Please stay on the line, we are finding someone for you.",
    "fr": "Restez en ligne, s'il vous plaît, nous cherchons quelqu'un pour vous.",
    "es": "Por favor, no cuelgue, estamos buscando a alguien para usted.",
    "ru": "Пожалуйста, оставайтесь на линии, мы ищем, кто вам ответит.",
    "ar": "يرجى البقاء على الخط، نحن نبحث عن شخص لمساعدتك.",
    "pt": "Por favor, não desligue, estamos a procurar alguém para si.",
    "tr": "Lütfen hatta kalın, size yardım edecek birini arıyoruz.",
    "de": "Bitte bleiben Sie in der Leitung, wir suchen jemanden für Sie.",
    "it": "Resti in linea, per favore, stiamo cercando qualcuno per lei.",
}

LEAVE_MESSAGE = {
    "en": "Nobody could answer right now. Please leave a message after the tone. "
    "The team will get it at once and contact you.",
    "fr": "Personne ne peut répondre pour le moment. Laissez un message après le bip. "
    "L'équipe le recevra tout de suite et vous recontactera.",
    "es": "Nadie puede atender en este momento. Deje un mensaje después del tono. "
    "El equipo lo recibirá enseguida y se pondrá en contacto con usted.",
    "ru": "Сейчас никто не может ответить. Оставьте сообщение после сигнала. "
    "Команда сразу его получит и свяжется с вами.",
    "ar": "لا يمكن لأحد الرد الآن. اترك رسالة بعد الصافرة. سيستلمها الفريق فورًا ويتواصل معك.",
    "pt": "Ninguém pode atender agora. Deixe uma mensagem depois do sinal. "
    "A equipa vai recebê-la de imediato e contactá-lo.",
    "tr": "Şu anda kimse cevap veremiyor. Lütfen sinyal sesinden sonra mesaj bırakın. "
    "Ekip mesajınızı hemen alacak ve size ulaşacak.",
    "de": "Im Moment kann niemand abheben. Bitte hinterlassen Sie nach dem Ton eine Nachricht. "
    "Das Team erhält sie sofort und meldet sich bei Ihnen.",
    "it": "Al momento nessuno può rispondere. Lasci un messaggio dopo il segnale. "
    "Il team lo riceverà subito e la contatterà.",
}

THANK_YOU = {
    "en": "Thank you. Your message is with the team. Goodbye.",
    "fr": "Merci. Votre message est transmis à l'équipe. Au revoir.",
    "es": "Gracias. Su mensaje ya está con el equipo. Adiós.",
    "ru": "Спасибо. Ваше сообщение передано команде. До свидания.",
    "ar": "شكرًا لك. رسالتك وصلت إلى الفريق. مع السلامة.",
    "pt": "Obrigado. A sua mensagem está com a equipa. Adeus.",
    "tr": "Teşekkürler. Mesajınız ekibe iletildi. Hoşça kalın.",
    "de": "Danke. Ihre Nachricht ist beim Team. Auf Wiederhören.",
    "it": "Grazie. Il suo messaggio è arrivato al team. Arrivederci.",
}

LANGUAGE_NAME = {
    "en": "English",
    "fr": "French",
    "es": "Spanish",
    "ru": "Russian",
    "ar": "Arabic",
    "pt": "Portuguese",
    "tr": "Turkish",
    "fa": "Persian",
    "de": "German",
    "it": "Italian",
    "uk": "Ukrainian",
    "nl": "Dutch",
    "pl": "Polish",
}

FALLBACK_GREETING = (
    "You have reached the emergency hotline. Please leave a message after the tone. "
    "The team will contact you as soon as possible."
)


def say_language(language: str) -> str:
    """Twilio's `<Say language>` for a hotline language; English where we have no voice."""
    return SAY_LANGUAGE.get(language, SAY_LANGUAGE["en"])


def spoken(table: dict[str, str], language: str) -> tuple[str, str]:
    """(text, say-language) of a line in `language`, or the English line in an English voice
    when there is no translation (so the caller always hears something)."""
    if language in table and language in SAY_LANGUAGE:
        return table[language], SAY_LANGUAGE[language]
    return table["en"], SAY_LANGUAGE["en"]


def menu_option(language: str, digit: int) -> tuple[str, str]:
    """ "For French, press 2", in French where we can say it, else in English."""
    if language in MENU_OPTION and language in SAY_LANGUAGE:
        return MENU_OPTION[language].format(digit=digit), SAY_LANGUAGE[language]
    name = LANGUAGE_NAME.get(language, language)
    return f"For {name}, press {digit}.", SAY_LANGUAGE["en"]


def language_name(language: str) -> str:
    return LANGUAGE_NAME.get(language, language)
